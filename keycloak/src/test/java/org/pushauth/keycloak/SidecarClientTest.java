package org.pushauth.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The shim's HTTP calls against a stand-in sidecar: credentials, paths, bodies, error mapping. */
class SidecarClientTest {
    private HttpServer server;
    private final List<String> seen = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/", exchange -> {
            String body = new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
            seen.add(exchange.getRequestMethod() + " " + exchange.getRequestURI() + " "
                + exchange.getRequestHeaders().getFirst("Authorization") + " " + body);
            String path = exchange.getRequestURI().getPath();
            int status;
            String answer;
            if (path.startsWith("/v1/realms/")) {
                status = 200;
                answer = "{\"user\":\"alice\",\"devices\":[]}";
            } else if (path.equals("/v1/logins") && body.contains("\"nobody\"")) {
                status = 404;
                answer = "{\"error\":\"no_device\",\"message\":\"the user has no enrolled push device\"}";
            } else if (path.equals("/v1/logins")) {
                status = 201;
                answer = "{\"id\":\"c1\",\"code\":\"048213\",\"devices\":[{\"id\":\"d1\",\"name\":\"phone\"}]}";
            } else if (path.startsWith("/v1/logins/")) {
                status = 200;
                answer = "{\"id\":\"c1\",\"state\":\"pending\"}";
            } else {
                status = 503;
                answer = "not json";
            }
            byte[] bytes = answer.getBytes(StandardCharsets.UTF_8);
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
        return new SidecarClient("http://127.0.0.1:" + server.getAddress().getPort() + "/", "s3cret-s3cret-s3cret");
    }

    @Test
    void startSendsRealmUsernameNonceAndContextWithTheSecret() throws Exception {
        JsonNode login = client().startLogin("demo", "alice", "nonce-0123456789abcdef", "session-0123456789abcdef",
            Map.of("client", "app", "ip", ""));
        // A six-digit code with a leading zero stays text: never parsed as a number.
        assertEquals("048213", login.get("code").asText());
        String request = seen.get(0);
        assertTrue(request.startsWith("POST /v1/logins Bearer s3cret-s3cret-s3cret "), request);
        assertTrue(request.contains("\"username\":\"alice\""), request);
        assertTrue(request.contains("\"realm\":\"demo\""), request);
        assertTrue(request.contains("\"session\":\"session-0123456789abcdef\""), request);
        // Empty context values are left out (the sidecar refuses nothing for them, but they say nothing).
        assertTrue(!request.contains("\"ip\""), request);
    }

    @Test
    void stateIsALongPollOnTheEscapedId() throws Exception {
        assertEquals("pending", client().loginState("a/b c", 3).get("state").asText());
        assertTrue(seen.get(0).startsWith("GET /v1/logins/a%2Fb%20c?wait=3 "), seen.get(0));
    }

    @Test
    void errorsKeepTheirStableCode() {
        SidecarException e = assertThrows(SidecarException.class,
            () -> client().startLogin("demo", "nobody", "nonce-0123456789abcdef", null, Map.of()));
        assertEquals(404, e.status());
        assertEquals("no_device", e.code());
        assertTrue(e.noDevice());
        SidecarException bad = assertThrows(SidecarException.class, () -> client().startEnrollment("demo", "x", null, Map.of()));
        assertEquals(503, bad.status());
        SidecarException down = assertThrows(SidecarException.class,
            () -> new SidecarClient("http://127.0.0.1:1", "x").loginState("c1", 0));
        assertEquals(0, down.status());
        assertEquals("sidecar_unreachable", down.code());
    }

    @Test
    void devicePathsNameTheRealmAndUser() throws Exception {
        assertEquals("alice", client().devices("demo", "alice").get("user").asText());
        assertTrue(seen.get(0).startsWith("GET /v1/realms/demo/users/alice/devices "), seen.get(0));
        client().revokeDevice("de mo", "a/b", "d1");
        assertTrue(seen.get(1).startsWith("DELETE /v1/realms/de%20mo/users/a%2Fb/devices/d1 "), seen.get(1));
    }
}
