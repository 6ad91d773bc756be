// The check page's file hashing: the chosen file is read and hashed here (MD5 by md5.js,
// SHA-256 by Web Crypto) and only the two hashes go into the form. The file never leaves.
"use strict";
(function () {
  var field = document.getElementById("file-field");
  var input = document.getElementById("file");
  var status = document.getElementById("file-status");
  var hashes = document.getElementById("hashes");
  if (!field || !input || !hashes || !window.crypto || !window.crypto.subtle) { return; }
  field.hidden = false;

  function hex(buffer) {
    return Array.from(new Uint8Array(buffer), function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  input.addEventListener("change", function () {
    var file = input.files && input.files[0];
    if (!file) { return; }
    status.textContent = "Hashing " + file.size + " bytes in this browser…";
    file.arrayBuffer().then(function (data) {
      return window.crypto.subtle.digest("SHA-256", data).then(function (sha) {
        var line = "md5:" + window.hashdbMd5(data) + " sha256:" + hex(sha);
        hashes.value = (hashes.value.trim() ? hashes.value.trim() + "\n" : "") + line;
        status.textContent = "Hashed: MD5 and SHA-256 added below. Press Look up to check them.";
      });
    }).catch(function (err) {
      status.textContent = "Could not hash the file: " + err;
    });
  });
})();
