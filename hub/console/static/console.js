// SSC Hub console: a little progressive JavaScript. Every page works without it.
(function () {
  "use strict";

  // Dangerous buttons ask once: <button data-confirm="Refund CNY 12.00?">.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var question = (button && button.dataset.confirm) || event.target.dataset.confirm;
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // Live regions: <div id="x" data-live="5"> re-reads itself (the element with the same id on
  // this page, or on the page named by data-src) every 5 seconds, so a terminal's presence or
  // a rollout's progress moves without a reload.
  function refresh(region) {
    var id = region.id;
    fetch(region.dataset.src || window.location.href, { credentials: "same-origin", headers: { "X-Live": "1" } })
      .then(function (response) {
        if (response.redirected || !response.ok) { return null; }
        return response.text();
      })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(id);
        if (fresh) { region.innerHTML = fresh.innerHTML; }
      })
      .catch(function () { /* the hub is unreachable: keep what is shown */ });
  }
  document.querySelectorAll("[data-live]").forEach(function (region) {
    var seconds = Math.max(2, parseInt(region.dataset.live, 10) || 10);
    window.setInterval(function () {
      if (!document.hidden) { refresh(region); }
    }, seconds * 1000);
  });

  // Selects marked data-autosubmit send their filter form on change.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
})();
