"""The stage kit: a service declares itself once (`spec.Stage`, `declaration.ServiceDeclaration`), and the kit
builds its consumer (`consumer`), its resources (`resources`: Redis, the graph, the inference client), its app
(`runtime.build_app`) and its replay (`replay`). `registry` lists every declared service; `deployment` and
`catalog` are derived from the declarations."""
