package org.pushauth.keycloak;

import java.util.List;
import java.util.Set;
import org.keycloak.Config;
import org.keycloak.authentication.Authenticator;
import org.keycloak.authentication.AuthenticatorFactory;
import org.keycloak.models.AuthenticationExecutionModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.provider.ProviderConfigProperty;

/** Registers "Push approval" for login flows. */
public final class PushAuthenticatorFactory implements AuthenticatorFactory {
    public static final String ID = "pushauth";
    private static volatile PushSettings settings;

    @Override
    public String getId() {
        return ID;
    }

    @Override
    public String getDisplayType() {
        return "Push approval";
    }

    @Override
    public String getHelpText() {
        return "Waits until the user approves the login on an enrolled pushauth device, typing the code shown.";
    }

    @Override
    public String getReferenceCategory() {
        return PushCredentialProvider.TYPE;
    }

    /**
     * Backup codes are part of the push step (the page offers them), so the account console shows
     * the "pushauth-backup-codes" type wherever this step is in a flow.
     */
    @Override
    public Set<String> getOptionalReferenceCategories(KeycloakSession session) {
        return Set.of(PushBackupCodesCredentialProvider.TYPE);
    }

    @Override
    public boolean isConfigurable() {
        return false;
    }

    @Override
    public AuthenticationExecutionModel.Requirement[] getRequirementChoices() {
        return new AuthenticationExecutionModel.Requirement[] {
            AuthenticationExecutionModel.Requirement.REQUIRED,
            AuthenticationExecutionModel.Requirement.ALTERNATIVE,
            AuthenticationExecutionModel.Requirement.DISABLED,
        };
    }

    @Override
    public boolean isUserSetupAllowed() {
        return true;
    }

    @Override
    public List<ProviderConfigProperty> getConfigProperties() {
        return List.of();
    }

    @Override
    public Authenticator create(KeycloakSession session) {
        return new PushAuthenticator(current());
    }

    static PushSettings current() {
        PushSettings s = settings;
        if (s == null) {
            s = PushSettings.load();
            settings = s;
        }
        return s;
    }

    @Override
    public void init(Config.Scope config) {
        settings = PushSettings.from(config);
    }

    @Override
    public void postInit(KeycloakSessionFactory factory) {
    }

    @Override
    public void close() {
    }
}
