package org.pushauth.keycloak;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;

/**
 * Checks the sidecar's signed result token: Ed25519 (JDK built-in) over the length-framed
 * bytes {@code "pushauth/v1/sidecar-result" challenge_id user nonce outcome expires_at}.
 * The message is rebuilt from what this login expects (its own challenge id, user and nonce),
 * so a token for another login, user or outcome never verifies. The only protocol logic in Java.
 */
public final class ResultVerifier {
    public static final String DOMAIN = "pushauth/v1/sidecar-result";

    /** DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows. */
    private static final byte[] SPKI_PREFIX = {
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00
    };

    private final PublicKey key;

    /** @param publicKeyB64 the sidecar's public key, unpadded base64url of the raw 32 bytes */
    public ResultVerifier(String publicKeyB64) throws GeneralSecurityException {
        byte[] raw;
        try {
            raw = Base64.getUrlDecoder().decode(publicKeyB64.trim());
        } catch (IllegalArgumentException e) {
            throw new GeneralSecurityException("the sidecar public key is not base64url");
        }
        if (raw.length != 32) {
            throw new GeneralSecurityException("the sidecar public key must be 32 bytes, got " + raw.length);
        }
        byte[] spki = new byte[SPKI_PREFIX.length + 32];
        System.arraycopy(SPKI_PREFIX, 0, spki, 0, SPKI_PREFIX.length);
        System.arraycopy(raw, 0, spki, SPKI_PREFIX.length, 32);
        this.key = KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(spki));
    }

    /** The signed bytes. */
    public static byte[] message(String challengeId, String user, String nonce, String outcome, long expiresAt) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(256);
        for (String field : new String[] {DOMAIN, challengeId, user, nonce, outcome, Long.toString(expiresAt)}) {
            byte[] bytes = field.getBytes(StandardCharsets.UTF_8);
            out.writeBytes(ByteBuffer.allocate(4).putInt(bytes.length).array());
            out.writeBytes(bytes);
        }
        return out.toByteArray();
    }

    /** Whether {@code signatureB64} signs exactly these fields with the sidecar's key. */
    public boolean verify(String challengeId, String user, String nonce, String outcome, long expiresAt, String signatureB64) {
        try {
            byte[] signature = Base64.getUrlDecoder().decode(signatureB64);
            Signature verifier = Signature.getInstance("Ed25519");
            verifier.initVerify(key);
            verifier.update(message(challengeId, user, nonce, outcome, expiresAt));
            return verifier.verify(signature);
        } catch (IllegalArgumentException | GeneralSecurityException e) {
            return false;
        }
    }

    /**
     * Whether the token approves this login: outcome {@code approved}, not expired at
     * {@code nowSecs}, and signed over this login's own id, user and nonce.
     */
    public boolean approves(String challengeId, String user, String nonce, String tokenOutcome,
                            long expiresAt, String signatureB64, long nowSecs) {
        return accepts("approved", challengeId, user, nonce, tokenOutcome, expiresAt, signatureB64, nowSecs);
    }

    /**
     * Whether the token says {@code expected} for this step: that outcome, not expired at
     * {@code nowSecs}, signed over this step's own id, user and nonce. A used backup code is
     * {@code backup_code}, never {@code approved}, so neither passes for the other.
     */
    public boolean accepts(String expected, String challengeId, String user, String nonce, String tokenOutcome,
                           long expiresAt, String signatureB64, long nowSecs) {
        if (challengeId == null || user == null || nonce == null || signatureB64 == null) {
            return false;
        }
        return expected.equals(tokenOutcome)
            && expiresAt > nowSecs
            && verify(challengeId, user, nonce, expected, expiresAt, signatureB64);
    }
}
