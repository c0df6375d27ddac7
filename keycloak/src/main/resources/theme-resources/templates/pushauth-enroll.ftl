<#-- pushauth: "Enroll a push device". For a user who has a device already, first the code to type
     on that device to approve adding one; then the single-use link and its QR code. Submits
     itself every second while waiting. -->
<#import "template.ftl" as layout>
<#import "pushauth-code.ftl" as pushauthCode>
<@layout.registrationLayout displayMessage=true; section>
    <#if section = "header">
        ${msg("pushEnrollTitle")}
    <#elseif section = "form">
        <form id="pushauth-enroll-form" class="${properties.kcFormClass!}" action="${url.loginAction}" method="post">
            <#if enrollState = "approval">
                <p id="pushauth-enroll-approval">${msg("pushEnrollApprovalInstructions")}</p>
                <@pushauthCode.code id="pushauth-enroll-code" value=enrollCode/>
                <#if enrollDevices?has_content>
                    <p id="pushauth-enroll-devices">${msg("pushSentTo", enrollDevices)}</p>
                </#if>
                <p class="${properties.kcLabelClass!}">${msg("pushWaiting")}</p>
                <input type="hidden" name="poll" value="1"/>
                <noscript>
                    <input class="${properties.kcButtonClass!} ${properties.kcButtonPrimaryClass!} ${properties.kcButtonBlockClass!}"
                           type="submit" value="${msg("pushCheck")}"/>
                </noscript>
                <script>
                    setTimeout(function () { document.getElementById("pushauth-enroll-form").submit(); }, 1000);
                </script>
                <p><button id="pushauth-enroll-lost" type="submit" name="lost" value="1"
                        class="${properties.kcButtonClass!} ${properties.kcButtonSecondaryClass!}">${msg("pushEnrollLost")}</button></p>
            <#elseif enrollState = "backup">
                <p id="pushauth-enroll-backup-instructions">${msg("pushEnrollBackupInstructions")}</p>
                <div class="${properties.kcFormGroupClass!}">
                    <label for="pushauth-backup-code" class="${properties.kcLabelClass!}">${msg("pushBackupLabel")}</label>
                    <input id="pushauth-backup-code" name="backup_code" type="text" class="${properties.kcInputClass!}"
                           autocomplete="one-time-code" autocapitalize="characters" autocorrect="off" spellcheck="false"
                           maxlength="64" autofocus
                           style="font-family:monospace;font-size:1.25rem;letter-spacing:0.08em"/>
                </div>
                <div class="${properties.kcFormGroupClass!}">
                    <button id="pushauth-backup-submit" type="submit" name="use_backup" value="1"
                            class="${properties.kcButtonClass!} ${properties.kcButtonPrimaryClass!} ${properties.kcButtonBlockClass!}">${msg("pushEnrollBackupSubmit")}</button>
                    <button id="pushauth-enroll-restart" type="submit" name="restart" value="1"
                            class="${properties.kcButtonClass!} ${properties.kcButtonSecondaryClass!} ${properties.kcButtonBlockClass!}">${msg("pushEnrollBackupBack")}</button>
                </div>
            <#elseif enrollState = "backup_done">
                <p id="pushauth-backup-accepted">${msg("pushBackupAccepted")}</p>
                <p style="text-align:center"><code id="pushauth-backup-replacement"
                   style="font-size:clamp(1.25rem, 6vw, 2rem);font-weight:700;letter-spacing:0.08em;white-space:nowrap">${enrollReplacement}</code></p>
                <p id="pushauth-backup-store">${msg("pushBackupStore")}</p>
                <div class="${properties.kcFormGroupClass!}">
                    <button id="pushauth-backup-continue" type="submit" name="poll" value="1"
                            class="${properties.kcButtonClass!} ${properties.kcButtonPrimaryClass!} ${properties.kcButtonBlockClass!}">${msg("pushEnrollBackupContinue")}</button>
                </div>
            <#elseif enrollState = "pending">
                <p>${msg("pushEnrollInstructions")}</p>
                <#if enrollQr?has_content>
                    <p style="text-align:center"><img id="pushauth-enroll-qr" src="${enrollQr}" alt="${msg("pushEnrollQrAlt")}" width="220" height="220"/></p>
                </#if>
                <p>${msg("pushEnrollLinkLabel")}</p>
                <p><code id="pushauth-enroll-url" style="word-break:break-all">${enrollUrl}</code></p>
                <p class="${properties.kcLabelClass!}">${msg("pushEnrollWaiting")}</p>
                <input type="hidden" name="poll" value="1"/>
                <noscript>
                    <input class="${properties.kcButtonClass!} ${properties.kcButtonPrimaryClass!} ${properties.kcButtonBlockClass!}"
                           type="submit" value="${msg("pushCheck")}"/>
                </noscript>
                <script>
                    setTimeout(function () { document.getElementById("pushauth-enroll-form").submit(); }, 1000);
                </script>
            <#elseif enrollState = "failed">
                <button id="pushauth-enroll-restart" type="submit" name="restart" value="1"
                        class="${properties.kcButtonClass!} ${properties.kcButtonPrimaryClass!} ${properties.kcButtonBlockClass!}">${msg("pushEnrollRestart")}</button>
                <#if enrollCode?has_content || enrollDevices?has_content>
                    <p><button id="pushauth-enroll-lost" type="submit" name="lost" value="1"
                            class="${properties.kcButtonClass!} ${properties.kcButtonSecondaryClass!}">${msg("pushEnrollLost")}</button></p>
                </#if>
            </#if>
        </form>
    </#if>
</@layout.registrationLayout>
