/* "Download CSV": the browser fetches the table's file from its own URL (dashboard.downloads),
 * /dashboard/<page>/<table>.csv with the page's query string, and saves it under the name the
 * server gives it. The status region says the download started (a screen reader announces it).
 */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  downloads: {
    start: function () {
      var context = window.dash_clientside.callback_context;
      var fired = context.triggered.length ? context.triggered[0] : null;
      if (!fired || !fired.value) {
        return window.dash_clientside.no_update;
      }
      // the button's id, as Dash writes it: {"key":...,"table":...,"type":"download"}.n_clicks
      var id = JSON.parse(fired.prop_id.slice(0, fired.prop_id.lastIndexOf(".")));
      var link = document.createElement("a");
      link.href = window.location.pathname.replace(/\/+$/, "") + "/" +
        encodeURIComponent(id.table) + ".csv" + window.location.search;
      link.download = "";
      document.body.appendChild(link);
      link.click();
      link.remove();
      return "Downloading " + id.table + " as CSV.";
    }
  }
});
