package org.pushauth.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Issue 9 item 2: the SPI secret only from a private file. */
class PushSettingsTest {
    @TempDir
    Path dir;

    private Path secret(String text, String perms) throws Exception {
        Path p = dir.resolve("secret");
        Files.writeString(p, text);
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString(perms));
        return p;
    }

    @Test
    void issue9Item2InlineSecretIsRefused() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
            () -> PushSettings.readSecret("inline-secret-0123456789", null));
        assertTrue(e.getMessage().contains("secret-file"), e.getMessage());
    }

    @Test
    void issue9Item2GroupOrOtherReadableSecretFileIsRefused() throws Exception {
        for (String perms : new String[] {"rw-r-----", "rw----r--", "rw--w----"}) {
            Path p = secret("shim-secret-0123456789", perms);
            IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> PushSettings.readSecret(null, p.toString()), perms);
            assertTrue(e.getMessage().contains("chmod 600"), e.getMessage());
        }
        Path p = secret("shim-secret-0123456789\n", "rw-------");
        assertEquals("shim-secret-0123456789", PushSettings.readSecret(null, p.toString()));
        Path bom = secret("\uFEFFshim-secret-0123456789", "rw-------");
        assertThrows(IllegalStateException.class, () -> PushSettings.readSecret(null, bom.toString()));
    }

    @Test
    void issue9Item1CredentialIdsAreFixedPerUserAndDevice() {
        assertEquals(PushCredentials.credentialId("u1", "d1"), PushCredentials.credentialId("u1", "d1"));
        assertNotEquals(PushCredentials.credentialId("u1", "d1"), PushCredentials.credentialId("u2", "d1"));
        assertEquals(36, PushCredentials.credentialId("u1", "d1").length());
    }
}
