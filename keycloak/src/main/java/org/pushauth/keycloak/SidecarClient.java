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
import java.util.Map;

/** The sidecar's shim API over HTTP with the shared secret. No pushauthd protocol here. */
public final class SidecarClient {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newBuilder()
        .connectTimeout(Duration.ofSeconds(5))
        .followRedirects(HttpClient.Redirect.NEVER)
        .build();

    private final String baseUrl;
    private final String secret;

    public SidecarClient(String baseUrl, String secret) {
        this.baseUrl = baseUrl.replaceAll("/+$", "");
        this.secret = secret;
    }

    private static String seg(String text) {
        return URLEncoder.encode(text, StandardCharsets.UTF_8).replace("+", "%20");
    }

    private JsonNode call(String method, String path, JsonNode body, int waitSecs) throws SidecarException {
        HttpRequest.Builder req = HttpRequest.newBuilder(URI.create(baseUrl + path))
            .timeout(Duration.ofSeconds(10L + waitSecs))
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
            resp = HTTP.send(req.build(), HttpResponse.BodyHandlers.ofString());
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

    /** Starts a push login; the answer holds id, code, devices and expires_at. */
    public JsonNode startLogin(String user, String nonce, Map<String, String> context) throws SidecarException {
        ObjectNode body = JSON.createObjectNode();
        body.put("user", user);
        body.put("nonce", nonce);
        ObjectNode ctx = body.putObject("context");
        context.forEach((k, v) -> {
            if (v != null && !v.isEmpty()) {
                ctx.put(k, v);
            }
        });
        return call("POST", "/v1/logins", body, 0);
    }

    /** The login's state, waiting up to {@code waitSecs} for it to end. */
    public JsonNode loginState(String id, int waitSecs) throws SidecarException {
        return call("GET", "/v1/logins/" + seg(id) + "?wait=" + waitSecs, null, waitSecs);
    }

    public JsonNode cancelLogin(String id) throws SidecarException {
        return call("DELETE", "/v1/logins/" + seg(id), null, 0);
    }

    /** Starts a device enrollment; the answer holds id, url and qr_svg. */
    public JsonNode startEnrollment(String user) throws SidecarException {
        ObjectNode body = JSON.createObjectNode();
        body.put("user", user);
        return call("POST", "/v1/enrollments", body, 0);
    }

    public JsonNode enrollmentState(String id, int waitSecs) throws SidecarException {
        return call("GET", "/v1/enrollments/" + seg(id) + "?wait=" + waitSecs, null, waitSecs);
    }
}
