package org.pushauth.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The Java side of the shim API contract: idp-sidecar/wire-fixtures.json, written by the Rust
 * wire types. A stand-in sidecar answers with each example, so {@link SidecarClient} parses it as
 * it parses real answers; the test fails when a field the shim reads ({@link SidecarClient#NEEDED})
 * is missing, when the sidecar has an answer state the shim does not know, or when an error body
 * does not come through with its status and code.
 */
class WireFixturesTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private HttpServer server;
    private int status;
    private String answer;
    private String request;

    private static JsonNode fixtures() throws Exception {
        return JSON.readTree(Files.readString(Path.of("..", "idp-sidecar", "wire-fixtures.json")));
    }

    @BeforeEach
    void start() throws Exception {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/", exchange -> {
            request = exchange.getRequestMethod() + " "
                + new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
            byte[] bytes = answer.getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().set("Content-Type", "application/json");
            exchange.sendResponseHeaders(status, bytes.length);
            exchange.getResponseBody().write(bytes);
            exchange.close();
        });
        server.start();
    }

    @AfterEach
    void stop() {
        server.stop(0);
    }

    private SidecarClient client() {
        return new SidecarClient("http://127.0.0.1:" + server.getAddress().getPort(), "s3cret-s3cret-s3cret");
    }

    /** The SidecarClient call for a fixture route, and the answer kind it gives. */
    private JsonNode call(String name, String method, String path) throws SidecarException {
        SidecarClient c = client();
        if (name.equals("enrollment_link_for_backup_code")) {
            return c.startEnrollmentWithBackupCode("demo", "alice", null, Map.of(), "7KQM-W3XA-9HRT-4FNC");
        }
        switch (method + " " + path) {
            case "POST /v1/logins":
                return c.startLogin("demo", "alice", "nonce-0123456789abcdef", null, Map.of());
            case "GET /v1/logins/{id}":
                return c.loginState("c1", 0);
            case "DELETE /v1/logins/{id}":
                return c.cancelLogin("c1");
            case "POST /v1/enrollments":
                return c.startEnrollment("demo", "alice", null, Map.of());
            case "GET /v1/enrollments/{id}":
                return c.enrollmentState("e1", 0);
            case "GET /v1/realms/{realm}/users/{username}/devices":
                return c.devices("demo", "alice");
            case "DELETE /v1/realms/{realm}/users/{username}/devices/{id}":
                return c.revokeDevice("demo", "alice", "d1");
            case "POST /v1/backup-codes/verify":
                return c.verifyBackupCode("demo", "alice", "7KQM-W3XA", "nonce-0123456789abcdef", null, Map.of());
            case "POST /v1/backup-codes":
                return c.startBackupCodes("demo", "alice", null, Map.of());
            case "GET /v1/backup-codes/{id}":
                return c.backupCodesState("b1", 0);
            default:
                return null;
        }
    }

    private static String kind(String name, String method, String path, JsonNode body) {
        if (path.startsWith("/v1/logins")) {
            return "login " + body.path("state").asText("?");
        }
        if (name.equals("enrollment_link_for_backup_code")) {
            return "enrollment " + body.path("state").asText("?") + " backup_code";
        }
        if (path.startsWith("/v1/enrollments")) {
            return "enrollment " + body.path("state").asText("?");
        }
        if (path.equals("/v1/backup-codes/verify")) {
            return "backup_code verified";
        }
        if (path.startsWith("/v1/backup-codes")) {
            return "backup_codes " + body.path("state").asText("?");
        }
        return method.equals("DELETE") ? "device_removed" : "devices";
    }

    @Test
    void everyAnswerCarriesTheFieldsTheShimReads() throws Exception {
        JsonNode doc = fixtures();
        JsonNode vectors = JSON.readTree(Files.readString(Path.of("..", "idp-sidecar", "test-vectors.json")));
        ResultVerifier verifier = new ResultVerifier(vectors.get("public_key").asText());
        Set<String> seen = new HashSet<>();
        int results = 0;
        for (JsonNode example : doc.get("responses")) {
            String method = example.get("method").asText();
            String path = example.get("path").asText();
            status = example.get("status").asInt();
            answer = example.get("body").toString();
            JsonNode parsed = call(example.get("name").asText(), method, path);
            if (parsed == null) {
                // Routes the shim never calls (health, public key): operators use them.
                assertTrue(path.equals("/healthz") || path.equals("/v1/public-key"), "unknown route " + path);
                continue;
            }
            String kind = kind(example.get("name").asText(), method, path, parsed);
            assertTrue(SidecarClient.NEEDED.containsKey(kind),
                example.get("name").asText() + ": the shim does not know the answer \"" + kind + "\"");
            for (String pointer : SidecarClient.NEEDED.get(kind)) {
                assertFalse(parsed.at(pointer).isMissingNode(),
                    example.get("name").asText() + ": no " + pointer + " in " + answer);
            }
            seen.add(kind);
            JsonNode result = parsed.path("result");
            if (!result.isMissingNode()) {
                // The result tokens are signed with the vectors' key: the shim's check accepts them.
                assertTrue(verifier.verify(parsed.get("id").asText(), parsed.get("user").asText(),
                    result.get("nonce").asText(), result.get("outcome").asText(),
                    result.get("expires_at").asLong(), result.get("signature").asText()), answer);
                // A login's token says how it ended; a used backup code's says "backup_code".
                assertEquals(parsed.has("state") ? parsed.get("state").asText() : "backup_code",
                    result.get("outcome").asText());
                results++;
            }
        }
        assertEquals(SidecarClient.NEEDED.keySet(), seen, "answers the shim handles but the fixture lacks");
        assertTrue(results >= 7, "ended logins with result tokens: " + results);
    }

    @Test
    void everyErrorKeepsItsStatusAndCode() throws Exception {
        JsonNode doc = fixtures();
        Set<String> codes = new HashSet<>();
        for (JsonNode example : doc.get("errors")) {
            status = example.get("status").asInt();
            answer = example.get("body").toString();
            SidecarException e = assertThrows(SidecarException.class,
                () -> client().startLogin("demo", "alice", "nonce-0123456789abcdef", null, Map.of()));
            assertEquals(status, e.status(), answer);
            assertEquals(example.get("body").get("error").asText(), e.code(), answer);
            assertEquals(example.get("body").get("message").asText(), e.getMessage(), answer);
            codes.add(e.code());
        }
        // The codes the shim branches on are among them, with the statuses it expects.
        for (String code : new String[] {"no_device", "unknown_user", "realm_not_configured",
                "bootstrap_not_allowed", "user_locked", "unknown_device", "not_found"}) {
            assertTrue(codes.contains(code), code);
        }
    }

    @Test
    void requestsUseOnlyTheFieldsTheSidecarTakes() throws Exception {
        JsonNode doc = fixtures();
        status = 201;
        answer = "{}";
        for (JsonNode example : doc.get("requests")) {
            String name = example.get("name").asText();
            JsonNode allowed = example.get("body");
            if (name.equals("start_login")) {
                client().startLogin("demo", "alice", "nonce-0123456789abcdef", "session-0123456789abcdef",
                    Map.of("client", "app"));
            } else if (name.equals("start_enrollment")) {
                client().startEnrollment("demo", "alice", "session-0123456789abcdef", Map.of("client", "app"));
            } else if (name.equals("start_enrollment_with_backup_code")) {
                client().startEnrollmentWithBackupCode("demo", "alice", "session-0123456789abcdef",
                    Map.of("client", "app"), "7KQM-W3XA");
            } else if (name.equals("verify_backup_code")) {
                client().verifyBackupCode("demo", "alice", "7KQM-W3XA", "nonce-0123456789abcdef",
                    "session-0123456789abcdef", Map.of("client", "app"));
            } else if (name.equals("start_backup_codes")) {
                client().startBackupCodes("demo", "alice", "session-0123456789abcdef", Map.of("client", "app"));
            } else {
                continue; // CIBA: Keycloak itself speaks it.
            }
            assertNotNull(request, name);
            JsonNode sent = JSON.readTree(request.substring(request.indexOf(' ') + 1));
            for (Iterator<String> it = sent.fieldNames(); it.hasNext(); ) {
                String field = it.next();
                if (!allowed.has(field)) {
                    fail(name + ": the shim sends \"" + field + "\", which the sidecar does not take");
                }
                assertEquals(allowed.get(field).getNodeType(), sent.get(field).getNodeType(), name + "." + field);
            }
        }
    }
}
