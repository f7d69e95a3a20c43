// Fills the consent form's "device" field, recorded in the consent trail with the IP
// address and user agent: a coarse description of the device, never an identifier.
document.addEventListener("DOMContentLoaded", function () {
  var field = document.querySelector("[data-device]");
  if (!field) { return; }
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }
  field.value = [navigator.platform || "", screen.width + "x" + screen.height, navigator.language || "", zone].join("; ").slice(0, 200);
});
