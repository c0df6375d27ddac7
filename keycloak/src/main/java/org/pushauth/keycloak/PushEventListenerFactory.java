package org.pushauth.keycloak;

import org.keycloak.Config;
import org.keycloak.events.EventListenerProvider;
import org.keycloak.events.EventListenerProviderFactory;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;

/** Registers the global listener that revokes a removed push credential's device. */
public final class PushEventListenerFactory implements EventListenerProviderFactory {
    public static final String ID = "pushauth-revoke";

    @Override
    public String getId() {
        return ID;
    }

    @Override
    public EventListenerProvider create(KeycloakSession session) {
        return new PushEventListener(session, PushAuthenticatorFactory.current());
    }

    /** Every realm's removals, without a realm setting a realm admin could switch off. */
    @Override
    public boolean isGlobal() {
        return true;
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
