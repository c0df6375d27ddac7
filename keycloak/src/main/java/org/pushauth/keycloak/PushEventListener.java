package org.pushauth.keycloak;

import org.jboss.logging.Logger;
import org.keycloak.events.Details;
import org.keycloak.events.Event;
import org.keycloak.events.EventListenerProvider;
import org.keycloak.events.EventType;
import org.keycloak.events.admin.AdminEvent;
import org.keycloak.events.admin.OperationType;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * Revokes a device in pushauthd when its "pushauth-device" credential is removed: by the user
 * in the account console (a REMOVE_CREDENTIAL event) or by an administrator (an admin event on
 * {@code users/<id>/credentials/<id>}, which Keycloak 26 records as an ACTION). Keycloak removes
 * stored credentials without calling the credential provider, so this listener is the hook; it
 * is global (no realm setting needed). A credential that still exists is never acted on.
 */
public final class PushEventListener implements EventListenerProvider {
    private static final Logger LOG = Logger.getLogger(PushEventListener.class);

    private final KeycloakSession session;
    private final PushSettings settings;

    public PushEventListener(KeycloakSession session, PushSettings settings) {
        this.session = session;
        this.settings = settings;
    }

    @Override
    public void onEvent(Event event) {
        if (event.getType() != EventType.REMOVE_CREDENTIAL || event.getDetails() == null) {
            return;
        }
        if (!PushCredentialProvider.TYPE.equals(event.getDetails().get(Details.CREDENTIAL_TYPE))) {
            return;
        }
        revoke(event.getRealmId(), event.getUserId(), event.getDetails().get(Details.CREDENTIAL_ID));
    }

    @Override
    public void onEvent(AdminEvent event, boolean includeRepresentation) {
        OperationType op = event.getOperationType();
        if ((op != OperationType.DELETE && op != OperationType.ACTION) || event.getResourcePath() == null) {
            return;
        }
        String[] parts = event.getResourcePath().split("/");
        if (parts.length == 4 && "users".equals(parts[0]) && "credentials".equals(parts[2])) {
            revoke(event.getRealmId(), parts[1], parts[3]);
        }
    }

    private void revoke(String realmId, String userId, String credentialId) {
        if (realmId == null || userId == null || credentialId == null || !settings.ok()) {
            return;
        }
        RealmModel realm = session.realms().getRealm(realmId);
        UserModel user = realm == null ? null : session.users().getUserById(realm, userId);
        if (user == null || user.credentialManager().getStoredCredentialById(credentialId) != null) {
            return;
        }
        try {
            String device = PushCredentials.revokeRemoved(settings, realm, user, credentialId);
            if (device != null) {
                LOG.infof("push credential %s of %s removed: device %s revoked in pushauth", credentialId, user.getUsername(), device);
            }
        } catch (SidecarException e) {
            LOG.errorf("push credential %s of %s was removed but its device could not be revoked in pushauth (%s: %s); "
                + "revoke it with pushauthd", credentialId, user.getUsername(), e.code(), e.getMessage());
        }
    }

    @Override
    public void close() {
    }
}
