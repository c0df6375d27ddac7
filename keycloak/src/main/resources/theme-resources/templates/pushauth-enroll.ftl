<#-- pushauth: "Enroll a push device". Shows the single-use link and its QR code and submits
     itself every second until the device has enrolled. -->
<#import "template.ftl" as layout>
<@layout.registrationLayout displayMessage=true; section>
    <#if section = "header">
        ${msg("pushEnrollTitle")}
    <#elseif section = "form">
        <form id="pushauth-enroll-form" class="${properties.kcFormClass!}" action="${url.loginAction}" method="post">
            <#if enrollState = "pending">
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
            <#else>
                <button id="pushauth-enroll-restart" type="submit" name="restart" value="1"
                        class="${properties.kcButtonClass!} ${properties.kcButtonPrimaryClass!} ${properties.kcButtonBlockClass!}">${msg("pushEnrollRestart")}</button>
            </#if>
        </form>
    </#if>
</@layout.registrationLayout>
