// Progressive enhancement of the upload form: drag and drop, the chosen file's name,
// and a size check before sending. Without JavaScript the plain form does the same job.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function init() {
    var form = document.querySelector(".upload-form");
    if (!form) return;
    var zone = form.querySelector("[data-dropzone]");
    var input = form.querySelector('input[type="file"]');
    var chosen = form.querySelector("[data-chosen]");
    var maxBytes = Number(form.getAttribute("data-max-bytes"));

    function describe() {
      var file = input.files && input.files[0];
      if (!file) { chosen.textContent = ""; return; }
      var mb = (file.size / (1024 * 1024)).toFixed(1);
      chosen.textContent = "Chosen: " + file.name + " (" + mb + " MB)";
      if (maxBytes && file.size > maxBytes) {
        chosen.textContent += ": too large, choose a smaller photo.";
      }
    }

    input.addEventListener("change", describe);
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("dragging");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        describe();
      }
    });
    form.addEventListener("submit", function (event) {
      var file = input.files && input.files[0];
      if (file && maxBytes && file.size > maxBytes) {
        event.preventDefault();
        describe();
        input.focus();
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
