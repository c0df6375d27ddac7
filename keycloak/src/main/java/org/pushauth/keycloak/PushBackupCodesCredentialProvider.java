package org.pushauth.keycloak;

import org.keycloak.credential.CredentialModel;
import org.keycloak.credential.CredentialProvider;
import org.keycloak.credential.CredentialTypeMetadata;
import org.keycloak.credential.CredentialTypeMetadataContext;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * The "pushauth-backup-codes" credential type: how the account console's Signing in page learns
 * about pushauth backup codes. Its create and update action is "Get new backup codes"
 * ({@link PushBackupCodesRequiredAction}), so the console offers "Set up Backup codes", which
 * issues a new set (voiding the old) each time. The stored credential holds no secret, only when the set was issued and
 * how many codes it had: the codes themselves live hashed in pushauthd. It is enabled wherever
 * the "Push approval" step is in a flow ({@link PushAuthenticatorFactory} names it as an optional
 * reference category).
 */
public final class PushBackupCodesCredentialProvider implements CredentialProvider<CredentialModel> {
    public static final String TYPE = "pushauth-backup-codes";

    private final KeycloakSession session;

    public PushBackupCodesCredentialProvider(KeycloakSession session) {
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

    /** Removes the record only: the codes stay valid in pushauthd until a new set voids them. */
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
            .displayName("pushauthBackupCodesDisplayName")
            .helpText("pushauthBackupCodesHelpText")
            .iconCssClass("kcAuthenticatorDefaultClass")
            // Keycloak allows a create or an update action, not both: "Set up" is shown whether
            // or not the user has a set, and each use issues a new set that voids the old.
            .createAction(PushBackupCodesRequiredAction.ID)
            .removeable(false)
            .build(session);
    }
}
