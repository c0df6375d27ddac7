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
            </#if>
        </form>
    </#if>
</@layout.registrationLayout>
