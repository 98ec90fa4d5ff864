/* Accessibility repairs for the markup of Dash 4's dcc.Dropdown and dcc.RadioItems.
 *
 * Both render their options as role="listbox" with role="option" labels that hold a native
 * radio input: interactive controls nested in interactive roles, which screen readers announce
 * wrongly (and axe-core reports as nested-interactive). The native radios are what the
 * keyboard actually moves through, so the repair keeps them and drops the wrong roles: the
 * list becomes a named radiogroup. The dropdown's trigger is reached through an aria-hidden
 * input that forwards focus to a button with tabindex -1; the stylesheet hides that input, and
 * the button itself takes the focus and the filter's label as part of its name.
 *
 * It also keeps the browser tab's title on the page shown.
 *
 * React only writes an attribute again when its value changes (aria-selected, on a new
 * choice), so a MutationObserver repeats the repair whenever the components re-render.
 */
(function () {
  "use strict";

  function labelText(id) {
    var label = id && document.getElementById(id);
    return label ? label.textContent.trim() : "";
  }

  function repairOptions(list, name) {
    if (list.getAttribute("role") === "listbox") {
      list.setAttribute("role", "radiogroup");
    }
    if (name && !list.hasAttribute("aria-label") && !list.hasAttribute("aria-labelledby")) {
      list.setAttribute("aria-label", name);
    }
    list.querySelectorAll("label[role=option]").forEach(function (option) {
      option.removeAttribute("role");
    });
    list.querySelectorAll("label[aria-selected]").forEach(function (option) {
      option.removeAttribute("aria-selected");
    });
  }

  function repairDropdown(button) {
    var labelId = button.id + "-label";
    if (button.getAttribute("tabindex") !== "0" && !button.disabled) {
      button.setAttribute("tabindex", "0");
    }
    var named = button.getAttribute("aria-labelledby") || "";
    if (document.getElementById(labelId) && named.split(" ")[0] !== labelId) {
      button.setAttribute("aria-labelledby", (labelId + " " + named).trim());
    }
    // the open list lives in a popover elsewhere in the document, named after its trigger
    var popover = document.getElementById(button.getAttribute("aria-controls") || "");
    if (popover) {
      var name = labelText(labelId) || "Options";
      if (!popover.hasAttribute("aria-label")) {
        popover.setAttribute("aria-label", name);
      }
      popover.querySelectorAll(".dash-options-list").forEach(function (list) {
        repairOptions(list, name);
      });
      popover.querySelectorAll("input[type=search]:not([aria-label])").forEach(function (s) {
        s.setAttribute("aria-label", "Search " + name.toLowerCase());
      });
    }
  }

  function retitle() {
    // the browser tab's title names the page shown (WCAG 2.4.2), after every navigation
    var heading = document.getElementById("page-title");
    var title = (heading ? heading.textContent.trim() + " · " : "") + "ESCO KPI dashboard";
    if (document.title !== title) {
      document.title = title;
    }
  }

  function repair() {
    retitle();
    document.querySelectorAll(".dash-dropdown-wrapper > button.dash-dropdown")
      .forEach(repairDropdown);
    document.querySelectorAll(".dash-radioitems.dash-options-list, .dash-checklist")
      .forEach(function (list) {
        repairOptions(list, labelText(list.id + "-label"));
        if (list.id && document.getElementById(list.id + "-label")) {
          list.setAttribute("aria-labelledby", list.id + "-label");
          list.removeAttribute("aria-label");
        }
      });
    // any other options list (a popover opened before its trigger was seen)
    document.querySelectorAll(".dash-options-list[role=listbox], label[role=option]")
      .forEach(function (el) {
        repairOptions(el.closest(".dash-options-list") || el.parentElement, "");
      });
  }

  var scheduled = false;
  new MutationObserver(function () {
    if (!scheduled) {
      scheduled = true;
      // a microtask: the repair lands before the browser paints or anyone reads the tree
      Promise.resolve().then(function () {
        scheduled = false;
        repair();
      });
    }
  }).observe(document.documentElement, {
    childList: true, subtree: true, attributes: true,
    attributeFilter: ["role", "aria-selected", "aria-controls", "tabindex"],
  });
  repair();
}());
