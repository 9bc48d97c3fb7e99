// Starts Swagger UI on /schema from odoofleet's own copy (no inline script: the page's CSP).
const root = document.getElementById("swagger-ui");
window.SwaggerUIBundle({
  url: root.dataset.spec,
  domNode: root,
  deepLinking: true,
  persistAuthorization: false,
  validatorUrl: null, // the default badge would load an image from validator.swagger.io
});
