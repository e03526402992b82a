// The pipeline editor: show only the trigger fields of the chosen trigger type. The page works
// without this script (every field is shown, and the server ignores what the type does not use).
(function () {
  "use strict";
  var name = document.getElementById("new-stage");
  if (name) {  // Enter in the new stage's name adds it (the form's default button only applies changes)
    name.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); document.getElementById("add-stage").click(); }
    });
  }
  var select = document.querySelector("#trigger select[name$='.trigger.type']");
  if (!select) { return; }
  var show = function () {
    document.querySelectorAll("#trigger .when").forEach(function (part) {
      var kinds = (part.getAttribute("data-when") || "").split(" ");
      part.hidden = kinds.indexOf(select.value) < 0;
    });
  };
  select.addEventListener("change", show);
  show();
}());
