<#-- pushauth: the number-matching code, large and grouped for reading ("482 913"; pushauthd's
     code_digits, 2 to 8, default 6). The groups are spans with a gap between them and no space
     in the text, so a copied code is digits only; the device accepts it with or without one.
     The size shrinks with the viewport so eight digits fit on a phone. -->
<#macro code id value>
    <#local split = (value?length <= 4)?then(value?length, ((value?length + 1) / 2)?floor)>
    <div id="${id}" aria-live="polite" data-length="${value?length}"
         style="font-size:clamp(2rem, 12vw, 3.5rem);font-weight:700;text-align:center;letter-spacing:0.12em;white-space:nowrap;font-variant-numeric:tabular-nums;margin:1rem 0"><span class="pushauth-code-group">${value[0..<split]}</span><#if split < value?length><span class="pushauth-code-group" style="margin-left:0.5em">${value[split..]}</span></#if></div>
</#macro>
