// Applies the theme chosen with the toggle (kept in localStorage) before the page paints;
// without a choice the browser's prefers-color-scheme decides (app.css).
(function () {
  try {
    var chosen = window.localStorage.getItem("lockgate-theme");
    if (chosen === "light" || chosen === "dark") {
      document.documentElement.setAttribute("data-theme", chosen);
    }
  } catch (e) {
    /* storage refused: follow the system */
  }
})();
