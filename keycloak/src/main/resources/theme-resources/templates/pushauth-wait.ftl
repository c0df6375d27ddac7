<#-- pushauth: the push approval page. While pending it submits itself every second; each submit
     asks the sidecar (a short long-poll) and either re-renders this page or ends the step.
     "Use a backup code" (pending or failed) cancels the push and shows a form for one of the
     person's backup codes; once accepted, the replacement code is shown here once. -->
<#import "template.ftl" as layout>
<#import "pushauth-code.ftl" as pushauthCode>
<@layout.registrationLayout displayMessage=true; section>
    <#if section = "header">
        <#if pushState?starts_with("backup")>${msg("pushBackupTitle")}<#else>${msg("pushTitle")}</#if>
    <#elseif section = "form">
        <form id="pushauth-form" class="${properties.kcFormClass!}" action="${url.loginAction}" method="post">
            <#if pushState = "pending">
                <p id="pushauth-instructions">${msg("pushInstructions")}</p>
                <@pushauthCode.code id="pushauth-code" value=pushCode/>
                <#if pushDevices?has_content>
                    <p id="pushauth-devices">${msg("pushSentTo", pushDevices)}</p>
                </#if>
                <p id="pushauth-waiting" class="${properties.kcLabelClass!}">${msg("pushWaiting")}</p>
                <input type="hidden" name="poll" value="1"/>
                <div class="${properties.kcFormGroupClass!}">
                    <noscript>
                        <input class="${properties.kcButtonClass!} ${properties.kcButtonPrimaryClass!} ${properties.kcButtonBlockClass!}"
                               type="submit" value="${msg("pushCheck")}"/>
                    </noscript>
                    <button id="pushauth-cancel" type="submit" name="cancel" value="1"
                            class="${properties.kcButtonClass!} ${properties.kcButtonSecondaryClass!} ${properties.kcButtonBlockClass!}">${msg("pushCancel")}</button>
                </div>
                <p><button id="pushauth-use-backup" type="submit" name="backup" value="1"
                        class="${properties.kcButtonClass!} ${properties.kcButtonSecondaryClass!}">${msg("pushUseBackupCode")}</button></p>
                <script>
                    setTimeout(function () { document.getElementById("pushauth-form").submit(); }, 1000);
                </script>
            <#elseif pushState = "failed">
                <div class="${properties.kcFormGroupClass!}">
                    <button id="pushauth-resend" type="submit" name="resend" value="1"
                            class="${properties.kcButtonClass!} ${properties.kcButtonPrimaryClass!} ${properties.kcButtonBlockClass!}">${msg("pushSendAgain")}</button>
                </div>
                <p><button id="pushauth-use-backup" type="submit" name="backup" value="1"
                        class="${properties.kcButtonClass!} ${properties.kcButtonSecondaryClass!}">${msg("pushUseBackupCode")}</button></p>
            <#elseif pushState = "backup">
                <p id="pushauth-backup-instructions">${msg("pushBackupInstructions")}</p>
                <div class="${properties.kcFormGroupClass!}">
                    <label for="pushauth-backup-code" class="${properties.kcLabelClass!}">${msg("pushBackupLabel")}</label>
                    <input id="pushauth-backup-code" name="backup_code" type="text" class="${properties.kcInputClass!}"
                           autocomplete="one-time-code" autocapitalize="characters" autocorrect="off" spellcheck="false"
                           maxlength="64" autofocus
                           style="font-family:monospace;font-size:1.25rem;letter-spacing:0.08em"/>
                </div>
                <div class="${properties.kcFormGroupClass!}">
                    <button id="pushauth-backup-submit" type="submit" name="use_backup" value="1"
                            class="${properties.kcButtonClass!} ${properties.kcButtonPrimaryClass!} ${properties.kcButtonBlockClass!}">${msg("pushBackupSubmit")}</button>
                    <button id="pushauth-resend" type="submit" name="resend" value="1" formnovalidate
                            class="${properties.kcButtonClass!} ${properties.kcButtonSecondaryClass!} ${properties.kcButtonBlockClass!}">${msg("pushBackupBack")}</button>
                </div>
            <#elseif pushState = "backup_done">
                <p id="pushauth-backup-accepted">${msg("pushBackupAccepted")}</p>
                <p style="text-align:center"><code id="pushauth-backup-replacement"
                   style="font-size:clamp(1.25rem, 6vw, 2rem);font-weight:700;letter-spacing:0.08em;white-space:nowrap">${pushReplacement}</code></p>
                <p id="pushauth-backup-store">${msg("pushBackupStore")}</p>
                <p id="pushauth-backup-remaining">${msg("pushBackupRemaining", pushRemaining?c)}</p>
                <div class="${properties.kcFormGroupClass!}">
                    <button id="pushauth-backup-continue" type="submit" name="backup_continue" value="1"
                            class="${properties.kcButtonClass!} ${properties.kcButtonPrimaryClass!} ${properties.kcButtonBlockClass!}">${msg("pushBackupContinue")}</button>
                </div>
            </#if>
        </form>
    </#if>
</@layout.registrationLayout>
