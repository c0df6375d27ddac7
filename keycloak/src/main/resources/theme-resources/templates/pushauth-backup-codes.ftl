<#-- pushauth: "Get new backup codes" (started from the account console). First the code to type on
     the device to approve (the page submits itself every second while waiting), then the new set,
     shown once, with copy and print guidance. -->
<#import "template.ftl" as layout>
<#import "pushauth-code.ftl" as pushauthCode>
<@layout.registrationLayout displayMessage=true; section>
    <#if section = "header">
        ${msg("pushBackupIssueTitle")}
    <#elseif section = "form">
        <form id="pushauth-codes-form" class="${properties.kcFormClass!}" action="${url.loginAction}" method="post">
            <#if codesState = "approval">
                <p id="pushauth-codes-approval">${msg("pushBackupIssueInstructions")}</p>
                <@pushauthCode.code id="pushauth-codes-push-code" value=codesPushCode/>
                <#if codesDevices?has_content>
                    <p id="pushauth-codes-devices">${msg("pushSentTo", codesDevices)}</p>
                </#if>
                <p class="${properties.kcLabelClass!}">${msg("pushWaiting")}</p>
                <input type="hidden" name="poll" value="1"/>
                <noscript>
                    <input class="${properties.kcButtonClass!} ${properties.kcButtonPrimaryClass!} ${properties.kcButtonBlockClass!}"
                           type="submit" value="${msg("pushCheck")}"/>
                </noscript>
                <script>
                    setTimeout(function () { document.getElementById("pushauth-codes-form").submit(); }, 1000);
                </script>
            <#elseif codesState = "codes">
                <p id="pushauth-codes-intro">${msg("pushBackupIssueShown", backupCodes?size)}</p>
                <ol id="pushauth-codes-list" style="font-family:monospace;font-size:clamp(1rem, 4.2vw, 1.2rem);letter-spacing:0.06em;white-space:nowrap">
                    <#list backupCodes as backupCode>
                        <li class="pushauth-backup-code">${backupCode}</li>
                    </#list>
                </ol>
                <p id="pushauth-codes-guidance">${msg("pushBackupIssueGuidance")}</p>
                <p><button id="pushauth-codes-print" type="button" onclick="window.print()"
                        class="${properties.kcButtonClass!} ${properties.kcButtonSecondaryClass!}">${msg("pushBackupIssuePrint")}</button></p>
                <div class="${properties.kcFormGroupClass!}">
                    <button id="pushauth-codes-done" type="submit" name="done" value="1"
                            class="${properties.kcButtonClass!} ${properties.kcButtonPrimaryClass!} ${properties.kcButtonBlockClass!}">${msg("pushBackupIssueDone")}</button>
                </div>
            <#elseif codesState = "failed">
                <button id="pushauth-codes-restart" type="submit" name="restart" value="1"
                        class="${properties.kcButtonClass!} ${properties.kcButtonPrimaryClass!} ${properties.kcButtonBlockClass!}">${msg("pushBackupIssueRestart")}</button>
            </#if>
            <#if isAppInitiatedAction?? && codesState != "codes">
                <button id="pushauth-codes-cancel" type="submit" name="cancel-aia" value="true" formnovalidate
                        class="${properties.kcButtonClass!} ${properties.kcButtonSecondaryClass!} ${properties.kcButtonBlockClass!}">${msg("doCancel")}</button>
            </#if>
        </form>
    </#if>
</@layout.registrationLayout>
