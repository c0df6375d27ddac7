package org.pushauth.keycloak;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Base64;
import java.util.Map;
import java.util.UUID;
import org.jboss.logging.Logger;
import org.keycloak.credential.CredentialModel;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.sessions.AuthenticationSessionModel;

/**
 * The Keycloak side of a pushauthd device: one "pushauth-device" credential per device, so the
 * account console lists the devices and can remove them. The credential's id is derived from the
 * Keycloak user id and the pushauthd device id, so when Keycloak reports a removed credential id
 * (it keeps no data of a removed credential) the listener can tell which device it was.
 */
final class PushCredentials {
    private static final Logger LOG = Logger.getLogger(PushCredentials.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private PushCredentials() {
    }

    /** The credential id for {@code deviceId} of {@code user} (a name-based UUID). */
    static String credentialId(String userId, String deviceId) {
        return UUID.nameUUIDFromBytes(("pushauth-device:" + userId + ":" + deviceId).getBytes(StandardCharsets.UTF_8)).toString();
    }

    /** Records the device as the user's credential unless it is there already. */
    static void mirror(UserModel user, String deviceId, String deviceName) {
        if (deviceId == null || deviceId.isEmpty()) {
            return;
        }
        String id = credentialId(user.getId(), deviceId);
        if (user.credentialManager().getStoredCredentialById(id) != null) {
            return;
        }
        CredentialModel credential = new CredentialModel();
        credential.setId(id);
        credential.setType(PushCredentialProvider.TYPE);
        credential.setUserLabel(deviceName == null || deviceName.isEmpty() ? "push device" : deviceName);
        credential.setCreatedDate(System.currentTimeMillis());
        try {
            credential.setCredentialData(JSON.writeValueAsString(Map.of("device_id", deviceId)));
        } catch (Exception e) {
            credential.setCredentialData("{}");
        }
        credential.setSecretData("{}");
        user.credentialManager().createStoredCredential(credential);
        LOG.infof("push device %s recorded as a credential of %s", deviceId, user.getUsername());
    }

    /**
     * Records that a new set of {@code count} backup codes was issued (replacing the record of
     * the previous set): a credential with no secret, so the account console lists the set and
     * offers a new one. The codes themselves are never stored in Keycloak.
     */
    static void recordBackupCodes(UserModel user, int count) {
        user.credentialManager().getStoredCredentialsByTypeStream(PushBackupCodesCredentialProvider.TYPE)
            .map(CredentialModel::getId)
            .toList()
            .forEach(id -> user.credentialManager().removeStoredCredentialById(id));
        CredentialModel credential = new CredentialModel();
        credential.setType(PushBackupCodesCredentialProvider.TYPE);
        credential.setUserLabel("Backup codes (" + count + ")");
        credential.setCreatedDate(System.currentTimeMillis());
        try {
            credential.setCredentialData(JSON.writeValueAsString(Map.of("count", count)));
        } catch (Exception e) {
            credential.setCredentialData("{}");
        }
        credential.setSecretData("{}");
        user.credentialManager().createStoredCredential(credential);
    }

    /**
     * Revokes in pushauthd the device whose credential {@code credentialId} was removed from
     * {@code user}. Returns the revoked device id, or null when no device of the user matches
     * (a credential recorded by an older version, or a device already revoked).
     */
    static String revokeRemoved(PushSettings settings, RealmModel realm, UserModel user, String credentialId)
            throws SidecarException {
        JsonNode list = settings.client.devices(realm.getName(), user.getUsername());
        for (JsonNode device : list.path("devices")) {
            String deviceId = device.path("id").asText("");
            if (!deviceId.isEmpty() && credentialId(user.getId(), deviceId).equals(credentialId)) {
                try {
                    settings.client.revokeDevice(realm.getName(), user.getUsername(), deviceId);
                } catch (SidecarException e) {
                    if (!"unknown_device".equals(e.code())) {
                        throw e;
                    }
                }
                return deviceId;
            }
        }
        return null;
    }

    /**
     * A digest of the login session (root session and browser tab): the sidecar cancels a
     * pending push of the same session when the step is entered again.
     */
    static String sessionDigest(AuthenticationSessionModel session) {
        String root = session.getParentSession() == null ? "" : session.getParentSession().getId();
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256")
                .digest(("pushauth-session:" + root + "/" + session.getTabId()).getBytes(StandardCharsets.UTF_8));
            return Base64.getUrlEncoder().withoutPadding().encodeToString(digest);
        } catch (NoSuchAlgorithmException e) {
            return null;
        }
    }
}
