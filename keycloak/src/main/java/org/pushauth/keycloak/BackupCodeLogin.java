package org.pushauth.keycloak;

import com.fasterxml.jackson.databind.JsonNode;
import jakarta.ws.rs.core.MultivaluedMap;
import jakarta.ws.rs.core.Response;
import java.security.SecureRandom;
import java.util.Base64;
import org.jboss.logging.Logger;
import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.authentication.AuthenticationFlowError;
import org.keycloak.events.Errors;
import org.keycloak.sessions.AuthenticationSessionModel;

/**
 * "Use a backup code" on the push page (issue 12; NIST SP 800-63B-4 §3.1.2, saved recovery
 * codes). Switching to the code cancels the push in flight; the code goes to the sidecar, which
 * has pushauthd consume it and answers with the replacement code and a result token signed with
 * outcome {@code backup_code} over this step's nonce. Only after that token verifies does the page
 * show the replacement (once: it is never stored here) and, on "continue", the flow go on.
 */
final class BackupCodeLogin {
    private static final Logger LOG = Logger.getLogger(BackupCodeLogin.class);
    private static final SecureRandom RANDOM = new SecureRandom();
    /** Set once a backup code verified for this login: the sidecar's id for that use. */
    static final String NOTE_DONE = "pushauth.backup.done";
    /** Longest code accepted as typed (groups and spaces included). */
    static final int MAX_CODE = 64;

    private final PushSettings settings;

    BackupCodeLogin(PushSettings settings) {
        this.settings = settings;
    }

    /** Whether the submit is one of the backup-code buttons. */
    static boolean handles(MultivaluedMap<String, String> form) {
        return form.containsKey("backup") || form.containsKey("use_backup") || form.containsKey("backup_continue");
    }

    /** Whether a backup code was accepted for this login already. */
    static boolean verified(AuthenticationSessionModel session) {
        return session.getAuthNote(NOTE_DONE) != null;
    }

    void action(AuthenticationFlowContext context, MultivaluedMap<String, String> form) {
        AuthenticationSessionModel session = context.getAuthenticationSession();
        if (form.containsKey("backup_continue")) {
            if (verified(session)) {
                session.removeAuthNote(NOTE_DONE);
                // The LOGIN event says the second factor was a backup code, not the push.
                context.getEvent().detail("pushauth_result", "backup_code");
                context.success();
            } else {
                context.challenge(page(context, "backup", null));
            }
            return;
        }
        if (form.containsKey("backup")) {
            // The person switched to a code: the push in flight must not stay open on the device.
            String id = session.getAuthNote(PushAuthenticator.NOTE_ID);
            session.removeAuthNote(PushAuthenticator.NOTE_ID);
            if (id != null) {
                try {
                    settings.client.cancelLogin(id);
                } catch (SidecarException e) {
                    // Already ended: nothing to cancel.
                }
            }
            context.challenge(page(context, "backup", null));
            return;
        }
        String code = form.getFirst("backup_code");
        code = code == null ? "" : code.strip();
        if (code.isEmpty() || code.length() > MAX_CODE) {
            context.challenge(page(context, "backup", "pushBackupInvalid"));
            return;
        }
        use(context, code);
    }

    private void use(AuthenticationFlowContext context, String code) {
        AuthenticationSessionModel session = context.getAuthenticationSession();
        String username = context.getUser().getUsername();
        byte[] nonceBytes = new byte[32];
        RANDOM.nextBytes(nonceBytes);
        String nonce = Base64.getUrlEncoder().withoutPadding().encodeToString(nonceBytes);
        JsonNode used;
        try {
            used = settings.client.verifyBackupCode(context.getRealm().getName(), username, code, nonce,
                PushCredentials.sessionDigest(session), PushAuthenticator.loginContext(context));
        } catch (SidecarException e) {
            LOG.warnf("backup code for %s refused: %s", username, e.code());
            if (e.status() == 429) {
                refuse(context, AuthenticationFlowError.ACCESS_DENIED, Errors.ACCESS_DENIED, "failed", "pushBackupLocked");
            } else if (e.status() == 403 || e.status() == 400) {
                refuse(context, AuthenticationFlowError.INVALID_CREDENTIALS, Errors.INVALID_USER_CREDENTIALS, "backup",
                    "pushBackupInvalid");
            } else {
                refuse(context, AuthenticationFlowError.INTERNAL_ERROR, Errors.INVALID_USER_CREDENTIALS, "backup",
                    "pushUnavailable");
            }
            return;
        }
        String id = used.path("id").asText("");
        String user = used.path("user").asText("");
        String expected = session.getAuthNote(PushAuthenticator.NOTE_USER);
        JsonNode result = used.path("result");
        boolean ok = !user.isEmpty() && (expected == null || expected.isEmpty() || expected.equals(user))
            && settings.verifier.accepts("backup_code", id, user, nonce, result.path("outcome").asText(),
                result.path("expires_at").asLong(0), result.path("signature").asText(""),
                System.currentTimeMillis() / 1000);
        if (!ok) {
            LOG.errorf("backup code result for %s did not verify; refusing the login", username);
            refuse(context, AuthenticationFlowError.INTERNAL_ERROR, Errors.INVALID_USER_CREDENTIALS, "failed",
                "pushBadResult");
            return;
        }
        LOG.infof("backup code used for %s (%d left)", username, used.path("remaining").asInt());
        session.setAuthNote(NOTE_DONE, id);
        context.challenge(donePage(context, used));
    }

    private Response donePage(AuthenticationFlowContext context, JsonNode used) {
        return context.form()
            .setAttribute("pushState", "backup_done")
            .setAttribute("pushReplacement", used.path("replacement").asText(""))
            .setAttribute("pushRemaining", used.path("remaining").asInt())
            .createForm(PushAuthenticator.TEMPLATE);
    }

    /** Shows {@code state} with {@code message}, and records a LOGIN_ERROR event. */
    private void refuse(AuthenticationFlowContext context, AuthenticationFlowError error, String eventError,
                        String state, String message) {
        context.getEvent().clone()
            .user(context.getUser())
            .detail("pushauth_result", message)
            .error(eventError);
        context.failureChallenge(error, page(context, state, message));
    }

    private Response page(AuthenticationFlowContext context, String state, String error) {
        var form = context.form()
            .setAttribute("pushState", state)
            .setAttribute("pushCode", "")
            .setAttribute("pushDevices", "");
        if (error != null) {
            form.setError(error);
        }
        return form.createForm(PushAuthenticator.TEMPLATE);
    }
}
