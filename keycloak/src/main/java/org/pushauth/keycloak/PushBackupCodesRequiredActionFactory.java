package org.pushauth.keycloak;

import org.keycloak.Config;
import org.keycloak.authentication.RequiredActionFactory;
import org.keycloak.authentication.RequiredActionProvider;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;

/** Registers "Get new backup codes". Reads the authenticator's server-level settings. */
public final class PushBackupCodesRequiredActionFactory implements RequiredActionFactory {
    @Override
    public String getId() {
        return PushBackupCodesRequiredAction.ID;
    }

    @Override
    public String getDisplayText() {
        return "Get new backup codes";
    }

    @Override
    public RequiredActionProvider create(KeycloakSession session) {
        return new PushBackupCodesRequiredAction(PushAuthenticatorFactory.current());
    }

    @Override
    public void init(Config.Scope config) {
    }

    @Override
    public void postInit(KeycloakSessionFactory factory) {
    }

    @Override
    public void close() {
    }
}
