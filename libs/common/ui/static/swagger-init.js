// Starts Swagger UI on /api/docs (see libs/common/apidocs.py): the page carries no inline
// script, so the document's address comes from data-url of #swagger-ui.
(function () {
  "use strict";
  var node = document.getElementById("swagger-ui");
  if (!node || typeof window.SwaggerUIBundle !== "function") {
    return;
  }
  window.ui = window.SwaggerUIBundle({
    url: node.getAttribute("data-url"),
    dom_id: "#swagger-ui",
    // No deep links: they put a link inside each operation's toggle button (nested
    // interactive controls, WCAG 4.1.2).
    deepLinking: false,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
})();
