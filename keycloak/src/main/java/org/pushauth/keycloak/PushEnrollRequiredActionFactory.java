package org.pushauth.keycloak;

import org.keycloak.Config;
import org.keycloak.authentication.RequiredActionFactory;
import org.keycloak.authentication.RequiredActionProvider;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;

/** Registers "Enroll a push device". Reads the authenticator's server-level settings. */
public final class PushEnrollRequiredActionFactory implements RequiredActionFactory {
    @Override
    public String getId() {
        return PushEnrollRequiredAction.ID;
    }

    @Override
    public String getDisplayText() {
        return "Enroll a push device";
    }

    @Override
    public RequiredActionProvider create(KeycloakSession session) {
        return new PushEnrollRequiredAction(PushAuthenticatorFactory.current());
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
