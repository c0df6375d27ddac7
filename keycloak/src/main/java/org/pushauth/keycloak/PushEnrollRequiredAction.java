package org.pushauth.keycloak;

import com.fasterxml.jackson.databind.JsonNode;
import jakarta.ws.rs.core.MultivaluedMap;
import jakarta.ws.rs.core.Response;
import java.util.Map;
import java.util.Set;
import org.jboss.logging.Logger;
import org.keycloak.authentication.RequiredActionContext;
import org.keycloak.authentication.RequiredActionProvider;
import org.keycloak.models.AuthenticationExecutionModel;
import org.keycloak.sessions.AuthenticationSessionModel;
import org.keycloak.sessions.CommonClientSessionModel;

/**
 * "Enroll a push device". For a user who already has a device, the sidecar first pushes
 * "Add a new device to your account?" to it: this page shows the code to type there and waits;
 * only once that device has approved does the sidecar get (and this page show) the enrollment
 * link and its QR code. A user with no device gets the link at once only where the sidecar's
 * realm rule allows it; otherwise the page says an administrator must enroll the device. Once a
 * device has enrolled it is recorded as a "pushauth-device" credential.
 *
 * A person who lost the device that should approve ("I lost my device") types one of their
 * backup codes instead (issue 12): the sidecar has pushauthd consume it and issue the link at
 * once; the page first shows the replacement code (once, never stored here), then the link.
 *
 * A first device (the link at once, approved by no existing device) is given only in a login that
 * checked more than a user name: in a passwordless flow ("Username Form", then "Push approval")
 * anyone who types the name of a user without a device would otherwise enroll their own phone.
 */
public final class PushEnrollRequiredAction implements RequiredActionProvider {
    public static final String ID = "pushauth-enroll";
    private static final Logger LOG = Logger.getLogger(PushEnrollRequiredAction.class);
    static final String TEMPLATE = "pushauth-enroll.ftl";
    static final String NOTE_ID = "pushauth.enroll.id";
    static final String NOTE_URL = "pushauth.enroll.url";
    static final String NOTE_QR = "pushauth.enroll.qr";
    static final String NOTE_CODE = "pushauth.enroll.code";
    static final String NOTE_DEVICES = "pushauth.enroll.devices";
    /**
     * Keycloak's authenticators that check a factor (something the user knows or has, or the
     * session cookie of an earlier login). "Username Form" is not one: it only names the user.
     * Unknown (custom) authenticators do not count: a first device is then refused, not given.
     */
    static final Set<String> FACTORS = Set.of("auth-cookie", "auth-username-password-form", "auth-password-form",
        "auth-otp-form", "auth-conditional-otp-form", "webauthn-authenticator", "webauthn-authenticator-passwordless",
        "passkeys-authenticator", "auth-recovery-authn-code-form", "auth-spnego", "auth-x509-client-username-form",
        "idp-username-password-form");

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
        clear(session);
        if (!settings.ok()) {
            context.challenge(page(context, "final", "pushNotConfigured"));
            return;
        }
        Map<String, String> ctx = RequiredActionPages.requestContext(context);
        String realm = context.getRealm().getName();
        String username = context.getUser().getUsername();
        try {
            boolean factor = checkedFactor(context);
            // Asked first, so a user name alone starts no enrollment in the sidecar at all.
            if (!factor && settings.client.devices(realm, username).path("devices").size() == 0) {
                refuseFirstDevice(context, username);
                return;
            }
            JsonNode created = settings.client.startEnrollment(realm, username, PushCredentials.sessionDigest(session), ctx);
            if (!factor && "pending".equals(created.path("state").asText())) {
                // The link at once is a first device (the last device went meanwhile). The
                // unshown link expires unused.
                refuseFirstDevice(context, username);
                return;
            }
            session.setAuthNote(NOTE_ID, created.path("id").asText());
            show(context, created);
        } catch (SidecarException e) {
            LOG.warnf("enrollment for %s not started: %s (%s)", username, e.code(), e.getMessage());
            if ("bootstrap_not_allowed".equals(e.code())) {
                context.challenge(page(context, "final", "pushEnrollNeedsAdmin"));
            } else if ("realm_not_configured".equals(e.code())) {
                context.challenge(page(context, "final", "pushRealmNotConfigured"));
            } else {
                context.challenge(page(context, "failed", "pushEnrollUnavailable"));
            }
        }
    }

    private void refuseFirstDevice(RequiredActionContext context, String username) {
        LOG.warnf("first push device for %s refused: this login checked no password or other factor", username);
        context.challenge(page(context, "final", "pushEnrollNeedsFactor"));
    }

    /** Whether an authenticator in {@link #FACTORS} succeeded in this login. */
    static boolean checkedFactor(RequiredActionContext context) {
        for (Map.Entry<String, CommonClientSessionModel.ExecutionStatus> e
                : context.getAuthenticationSession().getExecutionStatus().entrySet()) {
            if (e.getValue() != CommonClientSessionModel.ExecutionStatus.SUCCESS) {
                continue;
            }
            AuthenticationExecutionModel execution = context.getRealm().getAuthenticationExecutionById(e.getKey());
            if (execution != null && execution.getAuthenticator() != null && FACTORS.contains(execution.getAuthenticator())) {
                return true;
            }
        }
        return false;
    }

    /** Shows the page for an enrollment answer (start or state). */
    private void show(RequiredActionContext context, JsonNode state) {
        AuthenticationSessionModel session = context.getAuthenticationSession();
        switch (state.path("state").asText()) {
            case "approval_pending":
                RequiredActionPages.notePending(session, state, NOTE_CODE, NOTE_DEVICES);
                context.challenge(page(context, "approval", null));
                return;
            case "approval_refused":
                LOG.warnf("adding a push device for %s was not approved (%s)", context.getUser().getUsername(),
                    state.path("outcome").asText());
                session.removeAuthNote(NOTE_ID);
                context.challenge(page(context, "failed", "pushEnrollNotApproved"));
                return;
            case "pending":
                if (session.getAuthNote(NOTE_URL) == null) {
                    session.setAuthNote(NOTE_URL, state.path("url").asText());
                    String svg = state.path("qr_svg").asText("");
                    session.setAuthNote(NOTE_QR, RequiredActionPages.qrDataUri(svg));
                }
                context.challenge(page(context, "pending", null));
                return;
            case "enrolled":
                JsonNode device = state.path("device");
                PushCredentials.mirror(context.getUser(), device.path("id").asText(""), device.path("name").asText(""));
                clear(session);
                LOG.infof("push device %s enrolled for %s", device.path("id").asText(), context.getUser().getUsername());
                context.success();
                return;
            case "expired":
                session.removeAuthNote(NOTE_ID);
                context.challenge(page(context, "failed", "pushEnrollExpired"));
                return;
            default:
                context.challenge(page(context, "failed", "pushEnrollUnavailable"));
        }
    }

    @Override
    public void processAction(RequiredActionContext context) {
        AuthenticationSessionModel session = context.getAuthenticationSession();
        MultivaluedMap<String, String> form = context.getHttpRequest().getDecodedFormParameters();
        String id = session.getAuthNote(NOTE_ID);
        if (form.containsKey("lost") && settings.ok()) {
            context.challenge(page(context, "backup", null));
            return;
        }
        if (form.containsKey("use_backup") && settings.ok()) {
            useBackupCode(context, form.getFirst("backup_code"));
            return;
        }
        if (form.containsKey("restart") || id == null || !settings.ok()) {
            start(context);
            return;
        }
        try {
            show(context, settings.client.enrollmentState(id, PushAuthenticator.POLL_SECS));
        } catch (SidecarException e) {
            context.challenge(page(context, "failed", e.status() == 404 ? "pushEnrollExpired" : "pushEnrollUnavailable"));
        }
    }

    /** Enrollment approved by a backup code: the link at once, the replacement shown first. */
    private void useBackupCode(RequiredActionContext context, String typed) {
        AuthenticationSessionModel session = context.getAuthenticationSession();
        String code = typed == null ? "" : typed.strip();
        if (code.isEmpty() || code.length() > BackupCodeLogin.MAX_CODE) {
            context.challenge(page(context, "backup", "pushBackupInvalid"));
            return;
        }
        Map<String, String> ctx = RequiredActionPages.requestContext(context);
        String username = context.getUser().getUsername();
        JsonNode created;
        try {
            created = settings.client.startEnrollmentWithBackupCode(context.getRealm().getName(), username,
                PushCredentials.sessionDigest(session), ctx, code);
        } catch (SidecarException e) {
            LOG.warnf("enrollment with a backup code for %s refused: %s", username, e.code());
            String message = e.status() == 429 ? "pushBackupLocked"
                : e.status() == 403 || e.status() == 400 ? "pushBackupInvalid" : "pushEnrollUnavailable";
            context.getEvent().clone().user(context.getUser()).detail("pushauth_result", message)
                .error(org.keycloak.events.Errors.INVALID_USER_CREDENTIALS);
            context.challenge(page(context, e.status() == 429 ? "failed" : "backup", message));
            return;
        }
        clear(session);
        session.setAuthNote(NOTE_ID, created.path("id").asText());
        LOG.infof("adding a push device for %s approved with a backup code", username);
        if (!"pending".equals(created.path("state").asText())) {
            show(context, created);
            return;
        }
        // Note the link now; the page shows the replacement first, then the link on "continue".
        session.setAuthNote(NOTE_URL, created.path("url").asText());
        String svg = created.path("qr_svg").asText("");
        session.setAuthNote(NOTE_QR, RequiredActionPages.qrDataUri(svg));
        context.challenge(context.form()
            .setAttribute("enrollState", "backup_done")
            .setAttribute("enrollReplacement", created.path("replacement").asText(""))
            .setAttribute("enrollUrl", "")
            .setAttribute("enrollQr", "")
            .setAttribute("enrollCode", "")
            .setAttribute("enrollDevices", "")
            .createForm(TEMPLATE));
    }

    private Response page(RequiredActionContext context, String state, String error) {
        AuthenticationSessionModel session = context.getAuthenticationSession();
        var form = context.form()
            .setAttribute("enrollState", state)
            .setAttribute("enrollUrl", RequiredActionPages.note(session, NOTE_URL))
            .setAttribute("enrollQr", RequiredActionPages.note(session, NOTE_QR))
            .setAttribute("enrollCode", RequiredActionPages.note(session, NOTE_CODE))
            .setAttribute("enrollDevices", RequiredActionPages.note(session, NOTE_DEVICES));
        if (error != null) {
            form.setError(error);
        }
        return form.createForm(TEMPLATE);
    }

    private static void clear(AuthenticationSessionModel session) {
        session.removeAuthNote(NOTE_ID);
        session.removeAuthNote(NOTE_URL);
        session.removeAuthNote(NOTE_QR);
        session.removeAuthNote(NOTE_CODE);
        session.removeAuthNote(NOTE_DEVICES);
    }

    @Override
    public void close() {
    }
}
