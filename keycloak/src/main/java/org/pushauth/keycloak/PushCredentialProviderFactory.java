package org.pushauth.keycloak;

import org.keycloak.credential.CredentialProviderFactory;
import org.keycloak.models.KeycloakSession;

/** Registers the "pushauth-device" credential type. */
public final class PushCredentialProviderFactory implements CredentialProviderFactory<PushCredentialProvider> {
    public static final String ID = "pushauth-device";

    @Override
    public String getId() {
        return ID;
    }

    @Override
    public PushCredentialProvider create(KeycloakSession session) {
        return new PushCredentialProvider(session);
    }
}
