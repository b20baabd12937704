// Resources page: live preview of the link builder (the link, where it lands, the trial and
// the HTML code with its rendering). Everything is built with DOM APIs and escaped text:
// nothing a partner or staff typed is ever parsed as HTML.
(function () {
  "use strict";

  var form = document.getElementById("link-builder");
  var dataNode = document.getElementById("creatives-data");
  if (!form || !dataNode) { return; }

  var creatives = {};
  try {
    JSON.parse(dataNode.textContent).forEach(function (c) { creatives[String(c.id)] = c; });
  } catch (e) { return; }

  var siteUrl = form.getAttribute("data-site-url") || "";
  var defaultLanding = form.getAttribute("data-default-landing") || "";
  var merchantName = form.getAttribute("data-merchant-name") || "";
  var codePattern = /^[A-Za-z0-9_-]{3,40}$/;

  var out = {
    url: document.getElementById("preview-url"),
    destination: document.getElementById("preview-destination"),
    trial: document.getElementById("preview-trial"),
    render: document.getElementById("preview-render"),
    code: document.getElementById("preview-code")
  };

  function escapeHtml(value) {
    return String(value)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&#x27;");
  }

  function fieldValue(name) {
    var field = form.elements.namedItem(name);
    if (!field) { return ""; }
    if (field.length !== undefined && field.tagName === undefined) {
      for (var i = 0; i < field.length; i++) { if (field[i].checked) { return field[i].value; } }
      return "";
    }
    return field.value || "";
  }

  function update() {
    var code = fieldValue("code").trim();
    var url = siteUrl + "/r/" + (codePattern.test(code) ? code : "…");
    var destination = fieldValue("destination").trim() || defaultLanding;
    var trial = fieldValue("trial_days") || "14";
    var creative = creatives[fieldValue("creative")];

    out.url.textContent = url;
    out.destination.textContent = destination;
    out.trial.textContent = trial + " days";

    // The rendering links to the destination itself: the link does not exist yet.
    while (out.render.firstChild) { out.render.removeChild(out.render.firstChild); }
    var anchor = document.createElement("a");
    anchor.setAttribute("href", /^https?:\/\//i.test(destination) ? destination : defaultLanding);
    anchor.setAttribute("rel", "sponsored");
    var html;
    if (creative && creative.image) {
      var img = document.createElement("img");
      img.setAttribute("src", creative.image_path);
      img.setAttribute("alt", creative.title);
      if (creative.width) { img.setAttribute("width", creative.width); }
      if (creative.height) { img.setAttribute("height", creative.height); }
      anchor.appendChild(img);
      html = '<a href="' + escapeHtml(url) + '" rel="sponsored"><img src="' + escapeHtml(creative.image_url) +
        '" width="' + escapeHtml(creative.width || "") + '" height="' + escapeHtml(creative.height || "") +
        '" alt="' + escapeHtml(creative.title) + '"></a>';
    } else {
      var text = creative ? ((creative.kind === "text" && creative.text) ? creative.text : creative.title)
        : "Try " + merchantName + " free";
      anchor.textContent = text;
      html = '<a href="' + escapeHtml(url) + '" rel="sponsored">' + escapeHtml(text) + "</a>";
    }
    out.render.appendChild(anchor);
    out.code.textContent = html;
  }

  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();
})();
