package org.pushauth.keycloak;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.ws.rs.core.MultivaluedMap;
import jakarta.ws.rs.core.Response;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Map;
import org.jboss.logging.Logger;
import org.keycloak.authentication.RequiredActionContext;
import org.keycloak.authentication.RequiredActionProvider;
import org.keycloak.credential.CredentialModel;
import org.keycloak.sessions.AuthenticationSessionModel;

/**
 * "Enroll a push device": shows the enrollment link and its QR code, waits (the page submits
 * itself) until a device has enrolled, then records it as a "pushauth-device" credential.
 */
public final class PushEnrollRequiredAction implements RequiredActionProvider {
    public static final String ID = "pushauth-enroll";
    private static final Logger LOG = Logger.getLogger(PushEnrollRequiredAction.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    static final String TEMPLATE = "pushauth-enroll.ftl";
    static final String NOTE_ID = "pushauth.enroll.id";
    static final String NOTE_URL = "pushauth.enroll.url";
    static final String NOTE_QR = "pushauth.enroll.qr";

    private final PushSettings settings;

    public PushEnrollRequiredAction(PushSettings settings) {
        this.settings = settings;
    }

    @Override
    public void evaluateTriggers(RequiredActionContext context) {
    }

    @Override
    public void requiredActionChallenge(RequiredActionContext context) {
        start(context);
    }

    private void start(RequiredActionContext context) {
        AuthenticationSessionModel session = context.getAuthenticationSession();
        if (!settings.ok()) {
            context.challenge(page(context, "failed", "pushNotConfigured"));
            return;
        }
        try {
            JsonNode created = settings.client.startEnrollment(context.getUser().getUsername());
            session.setAuthNote(NOTE_ID, created.path("id").asText());
            session.setAuthNote(NOTE_URL, created.path("url").asText());
            String svg = created.path("qr_svg").asText("");
            session.setAuthNote(NOTE_QR, "data:image/svg+xml;base64,"
                + Base64.getEncoder().encodeToString(svg.getBytes(StandardCharsets.UTF_8)));
            context.challenge(page(context, "pending", null));
        } catch (SidecarException e) {
            LOG.warnf("enrollment for %s not started: %s (%s)", context.getUser().getUsername(), e.code(), e.getMessage());
            context.challenge(page(context, "failed", "pushEnrollUnavailable"));
        }
    }

    @Override
    public void processAction(RequiredActionContext context) {
        AuthenticationSessionModel session = context.getAuthenticationSession();
        MultivaluedMap<String, String> form = context.getHttpRequest().getDecodedFormParameters();
        String id = session.getAuthNote(NOTE_ID);
        if (form.containsKey("restart") || id == null || !settings.ok()) {
            start(context);
            return;
        }
        JsonNode state;
        try {
            state = settings.client.enrollmentState(id, PushAuthenticator.POLL_SECS);
        } catch (SidecarException e) {
            context.challenge(page(context, "failed", e.status() == 404 ? "pushEnrollExpired" : "pushEnrollUnavailable"));
            return;
        }
        switch (state.path("state").asText()) {
            case "enrolled":
                JsonNode device = state.path("device");
                CredentialModel credential = new CredentialModel();
                credential.setType(PushCredentialProvider.TYPE);
                credential.setUserLabel(device.path("name").asText("push device"));
                credential.setCreatedDate(System.currentTimeMillis());
                try {
                    credential.setCredentialData(JSON.writeValueAsString(Map.of("device_id", device.path("id").asText())));
                } catch (Exception e) {
                    credential.setCredentialData("{}");
                }
                credential.setSecretData("{}");
                context.getUser().credentialManager().createStoredCredential(credential);
                session.removeAuthNote(NOTE_ID);
                session.removeAuthNote(NOTE_URL);
                session.removeAuthNote(NOTE_QR);
                LOG.infof("push device %s enrolled for %s", device.path("id").asText(), context.getUser().getUsername());
                context.success();
                return;
            case "expired":
                context.challenge(page(context, "failed", "pushEnrollExpired"));
                return;
            default:
                context.challenge(page(context, "pending", null));
        }
    }

    private Response page(RequiredActionContext context, String state, String error) {
        AuthenticationSessionModel session = context.getAuthenticationSession();
        var form = context.form()
            .setAttribute("enrollState", state)
            .setAttribute("enrollUrl", session.getAuthNote(NOTE_URL) == null ? "" : session.getAuthNote(NOTE_URL))
            .setAttribute("enrollQr", session.getAuthNote(NOTE_QR) == null ? "" : session.getAuthNote(NOTE_QR));
        if (error != null) {
            form.setError(error);
        }
        return form.createForm(TEMPLATE);
    }

    @Override
    public void close() {
    }
}
