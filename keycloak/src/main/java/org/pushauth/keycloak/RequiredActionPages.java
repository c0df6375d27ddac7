package org.pushauth.keycloak;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.keycloak.authentication.RequiredActionContext;
import org.keycloak.sessions.AuthenticationSessionModel;

/**
 * What the push-approved required actions ("Enroll a push device", "Get new backup codes") share:
 * the context a device is shown, the auth notes an "approval pending" page reads, and the QR
 * image. One home, so both pages tell the person the same thing the same way.
 */
final class RequiredActionPages {
    private RequiredActionPages() {
    }

    /** The client and address the device is shown for an approval started from a required action. */
    static Map<String, String> requestContext(RequiredActionContext context) {
        AuthenticationSessionModel session = context.getAuthenticationSession();
        Map<String, String> ctx = new LinkedHashMap<>();
        ctx.put("client", session.getClient() == null ? null : session.getClient().getClientId());
        ctx.put("ip", context.getConnection() == null ? null : context.getConnection().getRemoteAddr());
        return ctx;
    }

    /**
     * Notes an {@code approval_pending} answer of the sidecar: the number to type on the device
     * (under {@code codeNote}) and the names of the devices asked, comma-separated (under
     * {@code devicesNote}).
     */
    static void notePending(AuthenticationSessionModel session, JsonNode state, String codeNote, String devicesNote) {
        session.setAuthNote(codeNote, state.path("code").asText(""));
        List<String> names = new ArrayList<>();
        state.path("devices").forEach(d -> names.add(d.asText()));
        session.setAuthNote(devicesNote, String.join(", ", names));
    }

    /** An auth note's value, or "" when unset (templates take no nulls). */
    static String note(AuthenticationSessionModel session, String name) {
        String value = session.getAuthNote(name);
        return value == null ? "" : value;
    }

    /** The sidecar's QR code (an SVG document) as a {@code data:} URI for an {@code img} tag. */
    static String qrDataUri(String svg) {
        return "data:image/svg+xml;base64,"
            + Base64.getEncoder().encodeToString(svg.getBytes(StandardCharsets.UTF_8));
    }
}
