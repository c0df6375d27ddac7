package org.pushauth.keycloak;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import org.jboss.logging.Logger;
import org.keycloak.Config;

/**
 * Server-level settings (never realm config, which realm admins can read), from the SPI options
 * of the authenticator: {@code --spi-authenticator-pushauth-sidecar-url},
 * {@code --spi-authenticator-pushauth-secret-file} (or {@code -secret}),
 * {@code --spi-authenticator-pushauth-sidecar-public-key}. Missing settings fail closed.
 */
public final class PushSettings {
    private static final Logger LOG = Logger.getLogger(PushSettings.class);

    public final SidecarClient client;
    public final ResultVerifier verifier;
    public final String problem;

    private PushSettings(SidecarClient client, ResultVerifier verifier, String problem) {
        this.client = client;
        this.verifier = verifier;
        this.problem = problem;
    }

    public boolean ok() {
        return problem == null;
    }

    /** Reads the authenticator's scope, whichever factory asks. */
    public static PushSettings load() {
        return from(Config.scope("authenticator", PushAuthenticatorFactory.ID));
    }

    public static PushSettings from(Config.Scope scope) {
        String url = scope == null ? null : scope.get("sidecar-url");
        String secret = scope == null ? null : scope.get("secret");
        String secretFile = scope == null ? null : scope.get("secret-file");
        String publicKey = scope == null ? null : scope.get("sidecar-public-key");
        try {
            if (url == null || url.isBlank()) {
                throw new IllegalStateException("spi-authenticator-pushauth-sidecar-url is not set");
            }
            if ((secret == null || secret.isBlank()) && secretFile != null && !secretFile.isBlank()) {
                secret = Files.readString(Path.of(secretFile), StandardCharsets.UTF_8).trim();
            }
            if (secret == null || secret.isBlank()) {
                throw new IllegalStateException("spi-authenticator-pushauth-secret-file (or -secret) is not set");
            }
            if (publicKey == null || publicKey.isBlank()) {
                throw new IllegalStateException("spi-authenticator-pushauth-sidecar-public-key is not set");
            }
            return new PushSettings(new SidecarClient(url, secret), new ResultVerifier(publicKey), null);
        } catch (IOException | GeneralSecurityException | IllegalStateException e) {
            LOG.errorf("pushauth is not configured, push logins will fail: %s", e.getMessage());
            return new PushSettings(null, null, e.getMessage());
        }
    }
}
