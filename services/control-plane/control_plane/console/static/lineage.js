// The console's lineage page: draws the request's lineage graph (elements embedded as JSON by the page) with
// Cytoscape.js, served from this package. A file, not an inline script: the console's CSP allows only 'self'.
(function () {
  "use strict";
  function draw() {
    var data = document.getElementById("lineage-data");
    var box = document.getElementById("lineage-graph");
    if (!data || !box || typeof cytoscape !== "function") { return; }
    var cy = cytoscape({
      container: box,
      elements: JSON.parse(data.textContent),
      layout: { name: "breadthfirst", directed: true, spacingFactor: 1.1, padding: 20 },
      style: [
        { selector: "node", style: { "label": "data(label)", "font-size": 10, "text-wrap": "wrap",
                                     "text-max-width": 140, "text-valign": "bottom", "text-margin-y": 4 } },
        { selector: "node[kind = 'run']", style: { "shape": "round-rectangle", "background-color": "#1f5fbf",
                                                   "width": 26, "height": 18 } },
        { selector: "node[kind = 'run'][?failed]", style: { "background-color": "#c62828" } },
        { selector: "node[kind = 'dataset']", style: { "shape": "barrel", "background-color": "#6b7380",
                                                       "width": 20, "height": 20 } },
        { selector: "node[kind = 'fact']", style: { "shape": "ellipse", "background-color": "#2e7d32",
                                                    "width": 16, "height": 16 } },
        { selector: "node[kind = 'import']", style: { "shape": "hexagon", "background-color": "#ef8f00",
                                                      "width": 24, "height": 22 } },
        { selector: "node[kind = 'approval']", style: { "shape": "diamond", "background-color": "#6a1b9a",
                                                        "width": 18, "height": 18 } },
        { selector: "node[kind = 'document']", style: { "shape": "rectangle", "background-color": "#90a4ae",
                                                        "width": 16, "height": 22 } },
        { selector: "node[kind = 'quarantine']", style: { "shape": "octagon", "background-color": "#b71c1c",
                                                          "width": 20, "height": 20 } },
        { selector: "node[kind = 'answer'], node[kind = 'memory_ingest']", style: { "shape": "tag",
                                                          "background-color": "#00838f", "width": 18, "height": 18 } },
        { selector: "edge", style: { "width": 1.5, "line-color": "#9aa5b5", "target-arrow-color": "#9aa5b5",
                                     "target-arrow-shape": "triangle", "curve-style": "bezier" } }
      ]
    });
    cy.on("tap", "node", function (evt) {
      var d = evt.target.data();
      var info = document.getElementById("lineage-selected");
      info.textContent = d.label + (d.model ? " — " + d.model : "") + (d.facts ? " — facts: " + d.facts.join(", ") : "") +
        (d.details ? " — " + d.details : "");
    });
    window.lineageGraph = cy;
    box.setAttribute("data-drawn", String(cy.nodes().length));
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
