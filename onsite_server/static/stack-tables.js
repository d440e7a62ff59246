// Phones: tables are shown as stacked rows (app.css), each cell labelled with its column's
// header. A template may set data-label itself; here every other cell gets its column's
// header text, so no table on any page needs sideways scrolling. Tables filled later by a
// script (the desk's live view) are labelled again when they change.
(function () {
  "use strict";
  function label(table) {
    var head = table.tHead && table.tHead.rows[0];
    if (!head) { return; }
    var names = Array.prototype.map.call(head.cells, function (th) {
      return th.textContent.replace(/\s+/g, " ").trim();
    });
    Array.prototype.forEach.call(table.tBodies, function (body) {
      Array.prototype.forEach.call(body.rows, function (row) {
        var col = 0;
        Array.prototype.forEach.call(row.cells, function (cell) {
          if (!cell.hasAttribute("data-label") && names[col] !== undefined) {
            cell.setAttribute("data-label", names[col]);
          }
          // A stacked row shows no bare "Actions:" for a cell with nothing in it.
          cell.classList.toggle("cell-empty", !cell.textContent.trim() &&
                                !cell.querySelector("input, button, select, a, img, svg"));
          col += cell.colSpan || 1;
        });
      });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("main table"), function (table) {
    label(table);
    if (window.MutationObserver) {
      new MutationObserver(function () { label(table); }).observe(table, { childList: true });
    }
  });
}());
