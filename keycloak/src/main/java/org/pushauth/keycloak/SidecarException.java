package org.pushauth.keycloak;

/** A failed sidecar call: the HTTP status (0 when unreachable) and the sidecar's stable error code. */
public final class SidecarException extends Exception {
    private final int status;
    private final String code;

    public SidecarException(int status, String code, String message) {
        super(message);
        this.status = status;
        this.code = code;
    }

    public int status() {
        return status;
    }

    public String code() {
        return code;
    }

    /** The user has no push device at all (offer enrollment). */
    public boolean noDevice() {
        return "no_device".equals(code) || "unknown_user".equals(code);
    }
}
