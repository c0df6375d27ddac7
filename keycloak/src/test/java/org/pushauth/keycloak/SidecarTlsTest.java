package org.pushauth.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import java.io.FileInputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.KeyStore;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 9 item 2: a sidecar on HTTPS. The shim trusts exactly the CA file it is given
 * ({@code sidecar-ca-file}); without it (JVM trust store) a private certificate is refused.
 */
class SidecarTlsTest {
    @TempDir
    Path dir;
    private HttpsServer server;
    private Path caPem;

    private static void run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) {
            throw new IllegalStateException(String.join(" ", cmd) + ": " + out);
        }
    }

    @BeforeEach
    void start() throws Exception {
        String keytool = Path.of(System.getProperty("java.home"), "bin", "keytool").toString();
        Path store = dir.resolve("sidecar.p12");
        caPem = dir.resolve("sidecar-ca.pem");
        run(keytool, "-genkeypair", "-alias", "sidecar", "-keyalg", "EC", "-groupname", "secp256r1",
            "-dname", "CN=127.0.0.1", "-ext", "san=ip:127.0.0.1", "-validity", "2",
            "-keystore", store.toString(), "-storetype", "PKCS12", "-storepass", "changeit", "-keypass", "changeit");
        run(keytool, "-exportcert", "-rfc", "-alias", "sidecar", "-keystore", store.toString(),
            "-storepass", "changeit", "-file", caPem.toString());
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (FileInputStream in = new FileInputStream(store.toFile())) {
            ks.load(in, "changeit".toCharArray());
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, "changeit".toCharArray());
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), null, null);
        server = HttpsServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.setHttpsConfigurator(new HttpsConfigurator(ctx));
        server.createContext("/", exchange -> {
            byte[] body = "{\"user\":\"alice\",\"devices\":[]}".getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(200, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        server.start();
    }

    @AfterEach
    void stop() {
        server.stop(0);
    }

    private String url() {
        return "https://127.0.0.1:" + server.getAddress().getPort();
    }

    @Test
    void issue9Item2TheCaFileIsTrustedAndNothingElse() throws Exception {
        SidecarClient trusted = new SidecarClient(url(), "s3cret-s3cret-s3cret", PushSettings.trust(caPem.toString()));
        assertEquals("alice", trusted.devices("demo", "alice").get("user").asText());
        SidecarClient jvmDefault = new SidecarClient(url(), "s3cret-s3cret-s3cret");
        SidecarException e = assertThrows(SidecarException.class, () -> jvmDefault.devices("demo", "alice"));
        assertEquals("sidecar_unreachable", e.code());
        assertThrows(IllegalStateException.class, () -> PushSettings.trust(dir.resolve("empty.pem").toFile().createNewFile()
            ? dir.resolve("empty.pem").toString() : null));
        assertEquals(null, PushSettings.trust(null));
    }
}
