package org.pushauth.keycloak;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SSLContext;

/**
 * The sidecar's shim API over HTTP(S) with the shared secret. No pushauthd protocol here: the
 * shim names the realm and the Keycloak user name, and the sidecar maps them to the pushauthd
 * user by its own per-realm rules.
 */
public final class SidecarClient {
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * The fields the shim reads from each sidecar answer (JSON pointers), by answer and state:
     * what {@link PushAuthenticator}, {@link PushEnrollRequiredAction}, {@link BackupCodeLogin},
     * {@link PushBackupCodesRequiredAction} and {@link PushCredentials} take from it. The keys are
     * "login STATE", "enrollment STATE" ("enrollment pending backup_code": started with a backup
     * code), "backup_code verified", "backup_codes STATE", "devices" and "device_removed". {@code WireFixturesTest} checks that the sidecar's own examples
     * ({@code idp-sidecar/wire-fixtures.json}) carry every one, and that every answer state there
     * is one the shim knows. Change this map with the code that reads the fields.
     */
    static final Map<String, List<String>> NEEDED = Map.ofEntries(
        Map.entry("login pending", List.of("/id", "/user", "/state", "/code", "/devices/0/name")),
        Map.entry("login approved", List.of("/id", "/state", "/device_id", "/device_name",
            "/result/outcome", "/result/expires_at", "/result/signature")),
        Map.entry("login denied", List.of("/state")),
        Map.entry("login reported", List.of("/state")),
        Map.entry("login code_mismatch", List.of("/state")),
        Map.entry("login expired", List.of("/state")),
        Map.entry("login cancelled", List.of("/state")),
        Map.entry("login error", List.of("/state")),
        Map.entry("enrollment approval_pending", List.of("/id", "/state", "/code", "/devices/0")),
        Map.entry("enrollment approval_refused", List.of("/state", "/outcome")),
        Map.entry("enrollment pending", List.of("/state", "/url", "/qr_svg")),
        Map.entry("enrollment enrolled", List.of("/state", "/device/id", "/device/name")),
        Map.entry("enrollment expired", List.of("/state")),
        Map.entry("enrollment pending backup_code", List.of("/id", "/state", "/url", "/qr_svg", "/replacement")),
        Map.entry("backup_code verified", List.of("/id", "/user", "/replacement", "/remaining",
            "/result/outcome", "/result/expires_at", "/result/signature")),
        Map.entry("backup_codes approval_pending", List.of("/id", "/state", "/code", "/devices/0")),
        Map.entry("backup_codes approval_refused", List.of("/state", "/outcome")),
        Map.entry("backup_codes issued", List.of("/state", "/codes/0")),
        Map.entry("devices", List.of("/devices/0/id")),
        Map.entry("device_removed", List.of()));

    private final String baseUrl;
    private final String secret;
    private final HttpClient http;

    /** A client trusting the JVM's default trust store (for an https:// sidecar). */
    public SidecarClient(String baseUrl, String secret) {
        this(baseUrl, secret, null);
    }

    /** {@code tls}: the SSL context that trusts the sidecar's CA, or null for the JVM default. */
    public SidecarClient(String baseUrl, String secret, SSLContext tls) {
        this.baseUrl = baseUrl.replaceAll("/+$", "");
        this.secret = secret;
        HttpClient.Builder builder = HttpClient.newBuilder()
            .connectTimeout(Duration.ofSeconds(5))
            .followRedirects(HttpClient.Redirect.NEVER);
        if (tls != null) {
            builder.sslContext(tls);
        }
        this.http = builder.build();
    }

    static String seg(String text) {
        return URLEncoder.encode(text, StandardCharsets.UTF_8).replace("+", "%20");
    }

    private JsonNode call(String method, String path, JsonNode body, int waitSecs) throws SidecarException {
        HttpRequest.Builder req = HttpRequest.newBuilder(URI.create(baseUrl + path))
            .timeout(Duration.ofSeconds(25L + waitSecs))
            .header("Authorization", "Bearer " + secret)
            .header("Accept", "application/json");
        if (body != null) {
            req.header("Content-Type", "application/json")
                .method(method, HttpRequest.BodyPublishers.ofString(body.toString()));
        } else {
            req.method(method, HttpRequest.BodyPublishers.noBody());
        }
        HttpResponse<String> resp;
        try {
            resp = http.send(req.build(), HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new SidecarException(0, "sidecar_unreachable", "the pushauth sidecar cannot be reached: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SidecarException(0, "interrupted", "interrupted");
        }
        JsonNode answer;
        try {
            answer = resp.body().isEmpty() ? JSON.createObjectNode() : JSON.readTree(resp.body());
        } catch (IOException e) {
            throw new SidecarException(resp.statusCode(), "bad_answer", "the sidecar's answer is not JSON");
        }
        if (resp.statusCode() / 100 != 2) {
            throw new SidecarException(resp.statusCode(), answer.path("error").asText("unknown_error"),
                answer.path("message").asText("sidecar error " + resp.statusCode()));
        }
        return answer;
    }

    private static ObjectNode identity(String realm, String username, String session, Map<String, String> context) {
        ObjectNode body = JSON.createObjectNode();
        body.put("realm", realm);
        body.put("username", username);
        if (session != null) {
            body.put("session", session);
        }
        ObjectNode ctx = body.putObject("context");
        context.forEach((k, v) -> {
            if (v != null && !v.isEmpty()) {
                ctx.put(k, v);
            }
        });
        return body;
    }

    /**
     * Starts a push login for the realm's user; the answer holds id, user (the pushauthd user),
     * code, devices and expires_at. A pending login of the same {@code session} is cancelled.
     */
    public JsonNode startLogin(String realm, String username, String nonce, String session, Map<String, String> context)
            throws SidecarException {
        ObjectNode body = identity(realm, username, session, context);
        body.put("nonce", nonce);
        return call("POST", "/v1/logins", body, 0);
    }

    /** The login's state, waiting up to {@code waitSecs} for it to end. */
    public JsonNode loginState(String id, int waitSecs) throws SidecarException {
        return call("GET", "/v1/logins/" + seg(id) + "?wait=" + waitSecs, null, waitSecs);
    }

    public JsonNode cancelLogin(String id) throws SidecarException {
        return call("DELETE", "/v1/logins/" + seg(id), null, 0);
    }

    /**
     * Starts a device enrollment: {@code approval_pending} (an existing device must approve; the
     * answer holds the code to show) or {@code pending} (the link, for a first device where the
     * realm allows it). 403 {@code bootstrap_not_allowed}: an administrator must enroll.
     */
    public JsonNode startEnrollment(String realm, String username, String session, Map<String, String> context)
            throws SidecarException {
        return call("POST", "/v1/enrollments", identity(realm, username, session, context), 0);
    }

    public JsonNode enrollmentState(String id, int waitSecs) throws SidecarException {
        return call("GET", "/v1/enrollments/" + seg(id) + "?wait=" + waitSecs, null, waitSecs);
    }

    /**
     * Starts an enrollment approved by one of the user's backup codes (the person lost their
     * device): the answer is {@code pending} with the link and the {@code replacement} code.
     * 403 {@code backup_code_invalid}, 429 when locked.
     */
    public JsonNode startEnrollmentWithBackupCode(String realm, String username, String session,
            Map<String, String> context, String code) throws SidecarException {
        ObjectNode body = identity(realm, username, session, context);
        body.put("backup_code", code);
        return call("POST", "/v1/enrollments", body, 0);
    }

    /**
     * Uses one of the user's backup codes instead of the push: {@code {"id","user","replacement",
     * "remaining","result"}}, the result token signed with outcome {@code backup_code} over the id,
     * the user and {@code nonce}. A push of this {@code session} still pending is cancelled.
     * 403 {@code backup_code_invalid}, 429 when locked.
     */
    public JsonNode verifyBackupCode(String realm, String username, String code, String nonce, String session,
            Map<String, String> context) throws SidecarException {
        ObjectNode body = identity(realm, username, session, context);
        body.put("code", code);
        body.put("nonce", nonce);
        return call("POST", "/v1/backup-codes/verify", body, 0);
    }

    /** Starts a push "Issue a new set of backup codes?" ({@code approval_pending} with the code to show). */
    public JsonNode startBackupCodes(String realm, String username, String session, Map<String, String> context)
            throws SidecarException {
        return call("POST", "/v1/backup-codes", identity(realm, username, session, context), 0);
    }

    /** The issuance's state; {@code issued} carries the new codes in that one answer only. */
    public JsonNode backupCodesState(String id, int waitSecs) throws SidecarException {
        return call("GET", "/v1/backup-codes/" + seg(id) + "?wait=" + waitSecs, null, waitSecs);
    }

    /** The mapped user's active devices: {@code {"user","devices":[{"id","name",…}]}}. */
    public JsonNode devices(String realm, String username) throws SidecarException {
        return call("GET", "/v1/realms/" + seg(realm) + "/users/" + seg(username) + "/devices", null, 0);
    }

    /** Revokes one of the mapped user's devices in pushauthd. */
    public JsonNode revokeDevice(String realm, String username, String deviceId) throws SidecarException {
        return call("DELETE", "/v1/realms/" + seg(realm) + "/users/" + seg(username) + "/devices/" + seg(deviceId), null, 0);
    }
}
