<#-- pushauth: the push approval page. While pending it submits itself every second; each submit
     asks the sidecar (a short long-poll) and either re-renders this page or ends the step. -->
<#import "template.ftl" as layout>
<#import "pushauth-code.ftl" as pushauthCode>
<@layout.registrationLayout displayMessage=true; section>
    <#if section = "header">
        ${msg("pushTitle")}
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
                <script>
                    setTimeout(function () { document.getElementById("pushauth-form").submit(); }, 1000);
                </script>
            <#elseif pushState = "failed">
                <div class="${properties.kcFormGroupClass!}">
                    <button id="pushauth-resend" type="submit" name="resend" value="1"
                            class="${properties.kcButtonClass!} ${properties.kcButtonPrimaryClass!} ${properties.kcButtonBlockClass!}">${msg("pushSendAgain")}</button>
                </div>
            </#if>
        </form>
    </#if>
</@layout.registrationLayout>
