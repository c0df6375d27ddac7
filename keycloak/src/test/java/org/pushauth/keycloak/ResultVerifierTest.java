package org.pushauth.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

/** The Java side of the result-token contract: idp-sidecar/test-vectors.json, written by Rust. */
class ResultVerifierTest {
    private static JsonNode vectors() throws Exception {
        return new ObjectMapper().readTree(Files.readString(Path.of("..", "idp-sidecar", "test-vectors.json")));
    }

    @Test
    void messagesAndSignaturesMatchTheRustVectors() throws Exception {
        JsonNode doc = vectors();
        assertEquals(ResultVerifier.DOMAIN, doc.get("domain").asText());
        ResultVerifier verifier = new ResultVerifier(doc.get("public_key").asText());
        int checked = 0;
        for (JsonNode v : doc.get("vectors")) {
            String id = v.get("challenge_id").asText();
            String user = v.get("user").asText();
            String nonce = v.get("nonce").asText();
            String outcome = v.get("outcome").asText();
            long exp = v.get("expires_at").asLong();
            String sig = v.get("signature").asText();
            assertEquals(v.get("message_hex").asText(),
                HexFormat.of().formatHex(ResultVerifier.message(id, user, nonce, outcome, exp)));
            assertTrue(verifier.verify(id, user, nonce, outcome, exp, sig), "vector " + checked);
            assertFalse(verifier.verify(id + "x", user, nonce, outcome, exp, sig));
            assertFalse(verifier.verify(id, user + "x", nonce, outcome, exp, sig));
            assertFalse(verifier.verify(id, user, nonce + "x", outcome, exp, sig));
            assertFalse(verifier.verify(id, user, nonce, outcome + "x", exp, sig));
            assertFalse(verifier.verify(id, user, nonce, outcome, exp + 1, sig));
            checked++;
        }
        assertTrue(checked >= 3);
    }

    @Test
    void onlyAnUnexpiredApprovalForThisLoginApproves() throws Exception {
        JsonNode doc = vectors();
        ResultVerifier verifier = new ResultVerifier(doc.get("public_key").asText());
        JsonNode approved = doc.get("vectors").get(0);
        JsonNode denied = doc.get("vectors").get(1);
        assertEquals("approved", approved.get("outcome").asText());
        assertEquals("denied", denied.get("outcome").asText());
        String id = approved.get("challenge_id").asText();
        String user = approved.get("user").asText();
        String nonce = approved.get("nonce").asText();
        long exp = approved.get("expires_at").asLong();
        assertTrue(verifier.approves(id, user, nonce, "approved", exp, approved.get("signature").asText(), exp - 10));
        // Expired.
        assertFalse(verifier.approves(id, user, nonce, "approved", exp, approved.get("signature").asText(), exp));
        // A denial's signature claimed as an approval.
        assertFalse(verifier.approves(id, user, nonce, "approved", exp, denied.get("signature").asText(), exp - 10));
        // Garbage signatures.
        assertFalse(verifier.approves(id, user, nonce, "approved", exp, "not base64!", exp - 10));
        assertFalse(verifier.approves(id, user, nonce, "approved", exp, "", exp - 10));
        // A login whose notes are gone never approves.
        assertFalse(verifier.approves(id, user, null, "approved", exp, approved.get("signature").asText(), exp - 10));
    }

    @Test
    void issue12ABackupCodeTokenIsNeverAnApprovalNorTheOtherWayRound() throws Exception {
        JsonNode doc = vectors();
        ResultVerifier verifier = new ResultVerifier(doc.get("public_key").asText());
        JsonNode fixtures = new ObjectMapper().readTree(Files.readString(Path.of("..", "idp-sidecar", "wire-fixtures.json")));
        JsonNode used = null;
        for (JsonNode r : fixtures.get("responses")) {
            if (r.get("name").asText().equals("backup_code_verified")) {
                used = r.get("body");
            }
        }
        String id = used.get("id").asText();
        String user = used.get("user").asText();
        JsonNode token = used.get("result");
        String nonce = token.get("nonce").asText();
        long exp = token.get("expires_at").asLong();
        String sig = token.get("signature").asText();
        assertEquals("backup_code", token.get("outcome").asText());
        assertTrue(verifier.accepts("backup_code", id, user, nonce, "backup_code", exp, sig, exp - 10));
        // Not as a push approval, not for another nonce or user, not once expired.
        assertFalse(verifier.approves(id, user, nonce, "backup_code", exp, sig, exp - 10));
        assertFalse(verifier.approves(id, user, nonce, "approved", exp, sig, exp - 10));
        assertFalse(verifier.accepts("backup_code", id, user, nonce + "x", "backup_code", exp, sig, exp - 10));
        assertFalse(verifier.accepts("backup_code", id, "demo/bob", nonce, "backup_code", exp, sig, exp - 10));
        assertFalse(verifier.accepts("backup_code", id, user, nonce, "backup_code", exp, sig, exp));
        // A push approval's token does not pass as a used backup code.
        JsonNode approved = doc.get("vectors").get(0);
        assertFalse(verifier.accepts("backup_code", approved.get("challenge_id").asText(), approved.get("user").asText(),
            approved.get("nonce").asText(), "approved", approved.get("expires_at").asLong(),
            approved.get("signature").asText(), approved.get("expires_at").asLong() - 10));
    }

    @Test
    void badPublicKeysAreRefused() {
        assertThrows(GeneralSecurityException.class, () -> new ResultVerifier("AAAA"));
        assertThrows(GeneralSecurityException.class, () -> new ResultVerifier("***"));
    }
}
