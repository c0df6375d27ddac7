package org.pushauth.keycloak;

import com.fasterxml.jackson.databind.JsonNode;
import jakarta.ws.rs.core.MultivaluedMap;
import jakarta.ws.rs.core.Response;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.jboss.logging.Logger;
import org.keycloak.authentication.InitiatedActionSupport;
import org.keycloak.authentication.RequiredActionContext;
import org.keycloak.authentication.RequiredActionProvider;
import org.keycloak.sessions.AuthenticationSessionModel;

/**
 * "Get new backup codes" (issue 12): an application-initiated action
 * ({@code kc_action=pushauth-backup-codes}) that the account console starts from Account security
 * → Signing in (the "pushauth-backup-codes" credential type names it as its create and update
 * action). It pushes "Issue a new set of backup codes?" to the user's devices (number matching,
 * the code shown here), and once a device approves shows the new set once, with copy and print
 * guidance. The codes pass through this page only: never stored in Keycloak. A no-secret
 * credential records when the set was issued, so the console lists it.
 */
public final class PushBackupCodesRequiredAction implements RequiredActionProvider {
    public static final String ID = "pushauth-backup-codes";
    private static final Logger LOG = Logger.getLogger(PushBackupCodesRequiredAction.class);
    static final String TEMPLATE = "pushauth-backup-codes.ftl";
    static final String NOTE_ID = "pushauth.codes.id";
    static final String NOTE_CODE = "pushauth.codes.code";
    static final String NOTE_DEVICES = "pushauth.codes.devices";
    /** Set once the set was shown: "done" then finishes the action. */
    static final String NOTE_SHOWN = "pushauth.codes.shown";

    private final PushSettings settings;

    public PushBackupCodesRequiredAction(PushSettings settings) {
        this.settings = settings;
    }

    @Override
    public InitiatedActionSupport initiatedActionSupport() {
        return InitiatedActionSupport.SUPPORTED;
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
        clear(session);
        if (!settings.ok()) {
            context.challenge(page(context, "final", "pushNotConfigured", null));
            return;
        }
        Map<String, String> ctx = RequiredActionPages.requestContext(context);
        try {
            JsonNode started = settings.client.startBackupCodes(context.getRealm().getName(),
                context.getUser().getUsername(), PushCredentials.sessionDigest(session), ctx);
            session.setAuthNote(NOTE_ID, started.path("id").asText());
            show(context, started);
        } catch (SidecarException e) {
            LOG.warnf("backup codes for %s not started: %s (%s)", context.getUser().getUsername(), e.code(), e.getMessage());
            if (e.noDevice()) {
                context.challenge(page(context, "final", "pushBackupIssueNoDevice", null));
            } else if (e.status() == 429) {
                context.challenge(page(context, "failed", "user_locked".equals(e.code()) ? "pushLocked" : "pushRateLimited", null));
            } else if ("realm_not_configured".equals(e.code())) {
                context.challenge(page(context, "final", "pushRealmNotConfigured", null));
            } else {
                context.challenge(page(context, "failed", "pushUnavailable", null));
            }
        }
    }

    private void show(RequiredActionContext context, JsonNode state) {
        AuthenticationSessionModel session = context.getAuthenticationSession();
        switch (state.path("state").asText()) {
            case "approval_pending":
                RequiredActionPages.notePending(session, state, NOTE_CODE, NOTE_DEVICES);
                context.challenge(page(context, "approval", null, null));
                return;
            case "issued":
                List<String> codes = new ArrayList<>();
                state.path("codes").forEach(c -> codes.add(c.asText()));
                if (codes.isEmpty()) {
                    // Already handed out once (a reload): they are never shown twice.
                    context.challenge(page(context, "failed", "pushBackupIssueShownOnce", null));
                    return;
                }
                session.removeAuthNote(NOTE_ID);
                session.setAuthNote(NOTE_SHOWN, "1");
                PushCredentials.recordBackupCodes(context.getUser(), codes.size());
                LOG.infof("a new set of %d backup codes was issued to %s", codes.size(), context.getUser().getUsername());
                context.challenge(page(context, "codes", null, codes));
                return;
            case "approval_refused":
                LOG.warnf("new backup codes for %s were not approved (%s)", context.getUser().getUsername(),
                    state.path("outcome").asText());
                session.removeAuthNote(NOTE_ID);
                context.challenge(page(context, "failed", "pushBackupIssueNotApproved", null));
                return;
            default:
                context.challenge(page(context, "failed", "pushUnavailable", null));
        }
    }

    @Override
    public void processAction(RequiredActionContext context) {
        AuthenticationSessionModel session = context.getAuthenticationSession();
        MultivaluedMap<String, String> form = context.getHttpRequest().getDecodedFormParameters();
        if (form.containsKey("done") && session.getAuthNote(NOTE_SHOWN) != null) {
            clear(session);
            context.success();
            return;
        }
        String id = session.getAuthNote(NOTE_ID);
        if (form.containsKey("restart") || id == null || !settings.ok()) {
            start(context);
            return;
        }
        try {
            show(context, settings.client.backupCodesState(id, PushAuthenticator.POLL_SECS));
        } catch (SidecarException e) {
            context.challenge(page(context, "failed", e.status() == 404 ? "pushExpired" : "pushUnavailable", null));
        }
    }

    private Response page(RequiredActionContext context, String state, String error, List<String> codes) {
        AuthenticationSessionModel session = context.getAuthenticationSession();
        var form = context.form()
            .setAttribute("codesState", state)
            .setAttribute("codesPushCode", RequiredActionPages.note(session, NOTE_CODE))
            .setAttribute("codesDevices", RequiredActionPages.note(session, NOTE_DEVICES))
            .setAttribute("backupCodes", codes == null ? List.of() : codes);
        if (error != null) {
            form.setError(error);
        }
        return form.createForm(TEMPLATE);
    }

    private static void clear(AuthenticationSessionModel session) {
        session.removeAuthNote(NOTE_ID);
        session.removeAuthNote(NOTE_CODE);
        session.removeAuthNote(NOTE_DEVICES);
        session.removeAuthNote(NOTE_SHOWN);
    }

    @Override
    public void close() {
    }
}
