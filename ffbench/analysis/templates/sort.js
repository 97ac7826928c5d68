// Sortable tables: click (or Enter on) a column header; numbers sort by their data-v value.
document.querySelectorAll("table.sortable th").forEach(function (th) {
  th.tabIndex = 0;
  function sort() {
    var table = th.closest("table"), body = table.tBodies[0];
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var up = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", up ? "ascending" : "descending");
    function key(row) {
      var cell = row.cells[col], v = cell.getAttribute("data-v");
      return v === null ? [1, cell.textContent.trim()] : v === "" ? [2, 0] : [0, parseFloat(v)];
    }
    Array.from(body.rows).map(function (r) { return [key(r), r]; }).sort(function (a, b) {
      var x = a[0], y = b[0];
      if (x[0] !== y[0]) return x[0] === 2 ? 1 : y[0] === 2 ? -1 : x[0] - y[0];
      var c = x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0;
      return up ? c : -c;
    }).forEach(function (p) { body.appendChild(p[1]); });
  }
  th.addEventListener("click", sort);
  th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
});

// Filter boxes: keep the rows of the next table whose text holds every word typed.
document.querySelectorAll("input.filter").forEach(function (box) {
  var table = box.nextElementSibling.querySelector("table");
  box.addEventListener("input", function () {
    var words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    Array.from(table.tBodies[0].rows).forEach(function (r) {
      var text = r.textContent.toLowerCase();
      r.hidden = !words.every(function (w) { return text.indexOf(w) >= 0; });
    });
  });
});
