package org.pushauth.keycloak;

import org.keycloak.credential.CredentialProviderFactory;
import org.keycloak.models.KeycloakSession;

/** Registers the "pushauth-backup-codes" credential type. */
public final class PushBackupCodesCredentialProviderFactory
        implements CredentialProviderFactory<PushBackupCodesCredentialProvider> {
    public static final String ID = "pushauth-backup-codes";

    @Override
    public String getId() {
        return ID;
    }

    @Override
    public PushBackupCodesCredentialProvider create(KeycloakSession session) {
        return new PushBackupCodesCredentialProvider(session);
    }
}
