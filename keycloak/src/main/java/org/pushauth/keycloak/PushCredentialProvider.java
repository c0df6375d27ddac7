package org.pushauth.keycloak;

import org.keycloak.credential.CredentialModel;
import org.keycloak.credential.CredentialProvider;
import org.keycloak.credential.CredentialTypeMetadata;
import org.keycloak.credential.CredentialTypeMetadataContext;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * The "pushauth-device" credential: one per pushauthd device the user has enrolled or approved a
 * login with, so the account console lists the devices and can remove them (removal revokes the
 * device in pushauthd: see {@link PushEventListener}). It holds no secret: the device key lives
 * on the device and in pushauthd, and whether the push is configured is pushauthd's device list.
 */
public final class PushCredentialProvider implements CredentialProvider<CredentialModel> {
    public static final String TYPE = "pushauth-device";

    private final KeycloakSession session;

    public PushCredentialProvider(KeycloakSession session) {
        this.session = session;
    }

    @Override
    public String getType() {
        return TYPE;
    }

    @Override
    public CredentialModel createCredential(RealmModel realm, UserModel user, CredentialModel credential) {
        if (credential.getCreatedDate() == null) {
            credential.setCreatedDate(System.currentTimeMillis());
        }
        credential.setType(TYPE);
        return user.credentialManager().createStoredCredential(credential);
    }

    /** Revokes the device in pushauthd first; a device that cannot be revoked keeps its credential. */
    @Override
    public boolean deleteCredential(RealmModel realm, UserModel user, String credentialId) {
        PushSettings settings = PushAuthenticatorFactory.current();
        if (settings.ok()) {
            try {
                PushCredentials.revokeRemoved(settings, realm, user, credentialId);
            } catch (SidecarException e) {
                throw new org.keycloak.models.ModelException("the push device could not be revoked in pushauth: " + e.getMessage());
            }
        }
        return user.credentialManager().removeStoredCredentialById(credentialId);
    }

    @Override
    public CredentialModel getCredentialFromModel(CredentialModel model) {
        return model;
    }

    @Override
    public CredentialTypeMetadata getCredentialTypeMetadata(CredentialTypeMetadataContext metadataContext) {
        return CredentialTypeMetadata.builder()
            .type(TYPE)
            .category(CredentialTypeMetadata.Category.TWO_FACTOR)
            .displayName("pushauthDeviceDisplayName")
            .helpText("pushauthDeviceHelpText")
            .iconCssClass("kcAuthenticatorDefaultClass")
            .createAction(PushEnrollRequiredAction.ID)
            .removeable(true)
            .build(session);
    }
}
