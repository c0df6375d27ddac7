package org.pushauth.keycloak;

import com.fasterxml.jackson.databind.JsonNode;
import jakarta.ws.rs.core.MultivaluedMap;
import jakarta.ws.rs.core.Response;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jboss.logging.Logger;
import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.authentication.AuthenticationFlowError;
import org.keycloak.authentication.Authenticator;
import org.keycloak.authentication.CredentialValidator;
import org.keycloak.events.Errors;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.sessions.AuthenticationSessionModel;

/**
 * "Push approval": starts a push through the sidecar, shows the code and device names, and
 * re-asks the sidecar on every page submit (the page submits itself every second; each ask
 * long-polls a few seconds). Only a verified result token for this login lets it through.
 */
public final class PushAuthenticator implements Authenticator, CredentialValidator<PushCredentialProvider> {
    private static final Logger LOG = Logger.getLogger(PushAuthenticator.class);
    private static final SecureRandom RANDOM = new SecureRandom();
    static final String TEMPLATE = "pushauth-wait.ftl";
    static final String NOTE_ID = "pushauth.id";
    static final String NOTE_NONCE = "pushauth.nonce";
    static final String NOTE_CODE = "pushauth.code";
    static final String NOTE_DEVICES = "pushauth.devices";
    /** The pushauthd user the sidecar mapped this login to (the result token names it). */
    static final String NOTE_USER = "pushauth.user";
    /** Seconds one page submit waits for the device. */
    static final int POLL_SECS = 3;

    private final PushSettings settings;

    public PushAuthenticator(PushSettings settings) {
        this.settings = settings;
    }

    @Override
    public void authenticate(AuthenticationFlowContext context) {
        if (!settings.ok()) {
            fail(context, AuthenticationFlowError.INTERNAL_ERROR, "pushNotConfigured", false);
            return;
        }
        if (BackupCodeLogin.verified(context.getAuthenticationSession())) {
            // A backup code was accepted for this login (and its replacement shown) before a reload.
            context.getAuthenticationSession().removeAuthNote(BackupCodeLogin.NOTE_DONE);
            context.success();
            return;
        }
        start(context);
    }

    /** What the person approves or uses a backup code for, as shown on the device and audited. */
    static Map<String, String> loginContext(AuthenticationFlowContext context) {
        AuthenticationSessionModel session = context.getAuthenticationSession();
        Map<String, String> ctx = new LinkedHashMap<>();
        ctx.put("service", "keycloak");
        ctx.put("realm", context.getRealm().getName());
        ctx.put("client", session.getClient() == null ? null : session.getClient().getClientId());
        ctx.put("ip", context.getConnection() == null ? null : context.getConnection().getRemoteAddr());
        String agent = context.getHttpRequest().getHttpHeaders().getHeaderString("User-Agent");
        ctx.put("user_agent", agent == null ? null : printable(agent, 256));
        return ctx;
    }

    private void start(AuthenticationFlowContext context) {
        AuthenticationSessionModel session = context.getAuthenticationSession();
        UserModel user = context.getUser();
        byte[] nonceBytes = new byte[32];
        RANDOM.nextBytes(nonceBytes);
        String nonce = Base64.getUrlEncoder().withoutPadding().encodeToString(nonceBytes);
        Map<String, String> ctx = loginContext(context);
        try {
            // Re-entering the step (reload, back, "send again") cancels the earlier push: the
            // sidecar does it by the session digest even if this session lost its notes.
            JsonNode login = settings.client.startLogin(context.getRealm().getName(), user.getUsername(), nonce,
                PushCredentials.sessionDigest(session), ctx);
            List<String> names = new ArrayList<>();
            login.path("devices").forEach(d -> names.add(d.path("name").asText()));
            session.setAuthNote(NOTE_ID, login.path("id").asText());
            session.setAuthNote(NOTE_USER, login.path("user").asText());
            session.setAuthNote(NOTE_NONCE, nonce);
            session.setAuthNote(NOTE_CODE, login.path("code").asText(""));
            session.setAuthNote(NOTE_DEVICES, String.join(", ", names));
            context.challenge(page(context, "pending", null));
        } catch (SidecarException e) {
            LOG.warnf("push for %s not started: %s (%s)", user.getUsername(), e.code(), e.getMessage());
            if (e.noDevice()) {
                fail(context, AuthenticationFlowError.CREDENTIAL_SETUP_REQUIRED, "pushNoDevice", false);
            } else if ("realm_not_configured".equals(e.code())) {
                fail(context, AuthenticationFlowError.INTERNAL_ERROR, "pushRealmNotConfigured", false);
            } else if (e.status() == 429) {
                fail(context, AuthenticationFlowError.ACCESS_DENIED,
                    "user_locked".equals(e.code()) ? "pushLocked" : "pushRateLimited", true);
            } else {
                fail(context, AuthenticationFlowError.INTERNAL_ERROR, "pushUnavailable", true);
            }
        }
    }

    @Override
    public void action(AuthenticationFlowContext context) {
        if (!settings.ok()) {
            fail(context, AuthenticationFlowError.INTERNAL_ERROR, "pushNotConfigured", false);
            return;
        }
        AuthenticationSessionModel session = context.getAuthenticationSession();
        MultivaluedMap<String, String> form = context.getHttpRequest().getDecodedFormParameters();
        if (BackupCodeLogin.handles(form)) {
            new BackupCodeLogin(settings).action(context, form);
            return;
        }
        String id = session.getAuthNote(NOTE_ID);
        if (form.containsKey("resend") || id == null) {
            // The sidecar cancels this session's earlier push when the new one starts.
            start(context);
            return;
        }
        if (form.containsKey("cancel")) {
            cancelQuietly(id);
            clear(session);
            fail(context, AuthenticationFlowError.ACCESS_DENIED, "pushCancelled", true);
            return;
        }
        JsonNode state;
        try {
            state = settings.client.loginState(id, POLL_SECS);
        } catch (SidecarException e) {
            if (e.status() == 404) {
                // The sidecar no longer knows it (restarted): offer a new push.
                fail(context, AuthenticationFlowError.EXPIRED_CODE, "pushExpired", true);
            } else {
                fail(context, AuthenticationFlowError.INTERNAL_ERROR, "pushUnavailable", true);
            }
            return;
        }
        String outcome = state.path("state").asText("error");
        switch (outcome) {
            case "pending":
                context.challenge(page(context, "pending", null));
                return;
            case "approved":
                JsonNode result = state.path("result");
                String pushUser = session.getAuthNote(NOTE_USER);
                boolean ok = pushUser != null && !pushUser.isEmpty() && settings.verifier.approves(id, pushUser,
                    session.getAuthNote(NOTE_NONCE), result.path("outcome").asText(),
                    result.path("expires_at").asLong(0), result.path("signature").asText(""),
                    System.currentTimeMillis() / 1000);
                if (ok) {
                    clear(session);
                    // The approving device appears in the account console (and can be removed there).
                    PushCredentials.mirror(context.getUser(), state.path("device_id").asText(""),
                        state.path("device_name").asText(""));
                    context.success();
                } else {
                    LOG.errorf("push result for %s did not verify; refusing the login", context.getUser().getUsername());
                    fail(context, AuthenticationFlowError.INTERNAL_ERROR, "pushBadResult", true);
                }
                return;
            case "denied":
                fail(context, AuthenticationFlowError.ACCESS_DENIED, "pushDenied", true);
                return;
            case "reported":
                fail(context, AuthenticationFlowError.ACCESS_DENIED, "pushReported", false);
                return;
            case "code_mismatch":
                fail(context, AuthenticationFlowError.ACCESS_DENIED, "pushCodeMismatch", true);
                return;
            case "expired":
            case "cancelled":
                fail(context, AuthenticationFlowError.EXPIRED_CODE, "pushExpired", true);
                return;
            default:
                fail(context, AuthenticationFlowError.INTERNAL_ERROR, "pushUnavailable", true);
        }
    }

    /** Shows the push page with an error; {@code resend} offers "send again". Logs LOGIN_ERROR. */
    private void fail(AuthenticationFlowContext context, AuthenticationFlowError error, String message, boolean resend) {
        context.getAuthenticationSession().removeAuthNote(NOTE_ID);
        // failureChallenge records no event by itself; a clone keeps the flow's own event a LOGIN.
        context.getEvent().clone()
            .user(context.getUser())
            .detail("pushauth_result", message)
            .error(error == AuthenticationFlowError.ACCESS_DENIED ? Errors.ACCESS_DENIED
                : error == AuthenticationFlowError.EXPIRED_CODE ? Errors.EXPIRED_CODE
                : Errors.INVALID_USER_CREDENTIALS);
        context.failureChallenge(error, page(context, resend ? "failed" : "final", message));
    }

    private Response page(AuthenticationFlowContext context, String state, String error) {
        AuthenticationSessionModel session = context.getAuthenticationSession();
        var form = context.form()
            .setAttribute("pushState", state)
            .setAttribute("pushCode", session.getAuthNote(NOTE_CODE) == null ? "" : session.getAuthNote(NOTE_CODE))
            .setAttribute("pushDevices", session.getAuthNote(NOTE_DEVICES) == null ? "" : session.getAuthNote(NOTE_DEVICES));
        if (error != null) {
            form.setError(error);
        }
        return form.createForm(TEMPLATE);
    }

    private void cancelQuietly(String id) {
        if (id == null) {
            return;
        }
        try {
            settings.client.cancelLogin(id);
        } catch (SidecarException e) {
            // Already ended or unknown: nothing to cancel.
        }
    }

    private static void clear(AuthenticationSessionModel session) {
        session.removeAuthNote(NOTE_ID);
        session.removeAuthNote(NOTE_NONCE);
        session.removeAuthNote(NOTE_CODE);
        session.removeAuthNote(NOTE_DEVICES);
        session.removeAuthNote(NOTE_USER);
    }

    private static String printable(String text, int max) {
        String clean = text.replaceAll("\\p{Cntrl}", "");
        return clean.length() > max ? clean.substring(0, max) : clean;
    }

    @Override
    public boolean requiresUser() {
        return true;
    }

    /**
     * From pushauthd's device list for the user this realm maps to (through the sidecar), not from
     * a Keycloak credential: a user with a device enrolled for SSH gets the push, never "set up a
     * device". When the list cannot be had, the answer is "configured", so the push step runs and
     * fails closed rather than offering enrollment.
     */
    @Override
    public boolean configuredFor(KeycloakSession session, RealmModel realm, UserModel user) {
        if (!settings.ok()) {
            return true;
        }
        try {
            return settings.client.devices(realm.getName(), user.getUsername()).path("devices").size() > 0;
        } catch (SidecarException e) {
            LOG.warnf("device list for %s not available (%s); treating the push as required", user.getUsername(), e.code());
            return true;
        }
    }

    @Override
    public void setRequiredActions(KeycloakSession session, RealmModel realm, UserModel user) {
        user.addRequiredAction(PushEnrollRequiredAction.ID);
    }

    @Override
    public PushCredentialProvider getCredentialProvider(KeycloakSession session) {
        return (PushCredentialProvider) session.getProvider(org.keycloak.credential.CredentialProvider.class, PushCredentialProviderFactory.ID);
    }

    @Override
    public void close() {
    }
}
