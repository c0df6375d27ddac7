package org.pushauth.keycloak;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.Set;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import org.jboss.logging.Logger;
import org.keycloak.Config;

/**
 * Server-level settings (never realm config, which realm admins can read), from the SPI options
 * of the authenticator:
 * <ul>
 * <li>{@code --spi-authenticator-pushauth-sidecar-url}: {@code http://} or {@code https://};</li>
 * <li>{@code --spi-authenticator-pushauth-secret-file}: the shared secret, in a file readable by
 *     Keycloak's user only (group or other permissions are refused). There is no inline secret
 *     option: a secret on the command line or in keycloak.conf is visible to too many;</li>
 * <li>{@code --spi-authenticator-pushauth-sidecar-public-key}: the result-token key;</li>
 * <li>{@code --spi-authenticator-pushauth-sidecar-ca-file} (optional): a PEM CA (or certificate)
 *     to trust for an https:// sidecar instead of the JVM trust store.</li>
 * </ul>
 * Missing or bad settings fail closed: every push step refuses, and the log says why.
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
        String inline = scope == null ? null : scope.get("secret");
        String secretFile = scope == null ? null : scope.get("secret-file");
        String publicKey = scope == null ? null : scope.get("sidecar-public-key");
        String caFile = scope == null ? null : scope.get("sidecar-ca-file");
        try {
            return new PushSettings(
                new SidecarClient(checkUrl(url), readSecret(inline, secretFile), trust(caFile)),
                new ResultVerifier(required(publicKey, "spi-authenticator-pushauth-sidecar-public-key")),
                null);
        } catch (IOException | GeneralSecurityException | IllegalStateException e) {
            LOG.errorf("pushauth is not configured, push logins will fail: %s", e.getMessage());
            return new PushSettings(null, null, e.getMessage());
        }
    }

    private static String required(String value, String option) {
        if (value == null || value.isBlank()) {
            throw new IllegalStateException(option + " is not set");
        }
        return value.trim();
    }

    static String checkUrl(String url) {
        String u = required(url, "spi-authenticator-pushauth-sidecar-url");
        if (!u.startsWith("http://") && !u.startsWith("https://")) {
            throw new IllegalStateException("spi-authenticator-pushauth-sidecar-url must be an http:// or https:// URL");
        }
        return u;
    }

    /** The shared secret, only from a file only Keycloak's user can read. */
    static String readSecret(String inline, String secretFile) throws IOException {
        if (inline != null && !inline.isBlank()) {
            throw new IllegalStateException("spi-authenticator-pushauth-secret is not supported: put the secret in a file "
                + "readable by Keycloak only (chmod 600) and pass spi-authenticator-pushauth-secret-file");
        }
        Path path = Path.of(required(secretFile, "spi-authenticator-pushauth-secret-file"));
        try {
            Set<PosixFilePermission> perms = Files.getPosixFilePermissions(path);
            for (PosixFilePermission p : perms) {
                if (p.name().startsWith("GROUP_") || p.name().startsWith("OTHERS_")) {
                    throw new IllegalStateException(path + " holds the sidecar secret but its group or others may access it; chmod 600 it");
                }
            }
        } catch (UnsupportedOperationException e) {
            // Not a POSIX file system: nothing to check.
        }
        String secret = Files.readString(path, StandardCharsets.UTF_8).trim();
        if (secret.length() < 16) {
            throw new IllegalStateException(path + " must hold the sidecar's shared secret (at least 16 characters)");
        }
        for (int i = 0; i < secret.length(); i++) {
            char c = secret.charAt(i);
            if (c < 0x21 || c > 0x7e) {
                throw new IllegalStateException(path + " holds characters other than printable ASCII; write the secret as plain text");
            }
        }
        return secret;
    }

    /** An SSL context trusting only the certificates in {@code caFile}, or null for the JVM default. */
    static SSLContext trust(String caFile) throws IOException, GeneralSecurityException {
        if (caFile == null || caFile.isBlank()) {
            return null;
        }
        KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
        store.load(null, null);
        int n = 0;
        try (InputStream in = Files.newInputStream(Path.of(caFile.trim()))) {
            for (Certificate cert : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                store.setCertificateEntry("pushauth-ca-" + n++, cert);
            }
        }
        if (n == 0) {
            throw new IllegalStateException(caFile + " holds no PEM certificate");
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(store);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, tmf.getTrustManagers(), null);
        return ctx;
    }
}
