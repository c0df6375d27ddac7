package org.pushauth.keycloak;

import org.keycloak.credential.CredentialModel;
import org.keycloak.credential.CredentialProvider;
import org.keycloak.credential.CredentialTypeMetadata;
import org.keycloak.credential.CredentialTypeMetadataContext;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * The "pushauth-device" credential: one per enrolled device, recorded by the enrollment required
 * action so {@code configuredFor} needs no network call and the account console lists devices.
 * It holds no secret: the device key lives on the device and in pushauthd.
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

    @Override
    public boolean deleteCredential(RealmModel realm, UserModel user, String credentialId) {
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
