/* gridmap tiled layers: grids, buildings, stations and incidents drawn from /tiles/{layer}/{z}/{x}/{y}.pbf
 * with Leaflet.VectorGrid, so a page holds no data and each pan or zoom fetches only what the view shows.
 *
 * The server does the work: simplification per zoom, buildings only from street zoom, incident clusters
 * (counts per tile cell) at low zoom, the incident filters (sent as query parameters), the caller's view
 * of the incidents, and the GCJ-02 shift (gcj02=1 while 高德 is the basemap). Popups are built here
 * from tile properties; a click on a feature also fires "gm:feature" on the map. A page may set
 * window.gridmap.tiles.incidentQuery (query parameters, as /v1/incidents takes them) and call
 * layers.incidents.gmRefresh() to show its own filter's incidents. Tests and benchmarks read window.gridmap.tiles.
 */
(function () {
  "use strict";

  // Leaflet.VectorGrid 1.3 calls L.DomEvent.fakeStop on a click, which Leaflet 1.8 removed.
  if (!L.DomEvent.fakeStop) L.DomEvent.fakeStop = function (e) { L.DomEvent.stopPropagation(e); };

  var GM = window.GM, esc = GM.esc;

  function colour(value, m) {
    var c = m.colors[0];
    for (var i = 0; i < m.breaks.length; i++) if (value >= m.breaks[i]) c = m.colors[i + 1];
    return c;
  }

  function table(rows) {
    return '<table class="gm-popup">' + rows.filter(function (r) { return r[1] != null && r[1] !== ""; })
      .map(function (r) { return "<tr><th>" + esc(r[0]) + "</th><td>" + (r[2] ? r[1] : esc(r[1])) + "</td></tr>"; })
      .join("") + "</table>";
  }

  var DISTANCE = [[300, "#1a9850"], [500, "#a6d96a"], [1000, "#fdae61"], [Infinity, "#d73027"]];
  var LEVELS = {
    county: { color: "#5b2c6f", weight: 3.5, dashArray: "8 4" },
    town: { color: "#7d3c98", weight: 2.5, dashArray: "4 3" },
    community: { color: "#1f618d", weight: 1.8 }
  };

  /**
   * GM.tiles(map, options, group…): one Leaflet.VectorGrid layer per entry of options.layers, each drawn into
   * the group at the same position; options.derived names groups filled from the features of loaded tiles
   * (cluster numbers, the heat map, stations' service rings), which follow the tiles as they come and go.
   */
  GM.tiles = function (map, options) {
    var list = Array.prototype.slice.call(arguments, 2);
    var groups = {};
    options.layers.forEach(function (l, i) { groups[l.id] = list[i]; });
    var derivedGroups = {};
    Object.keys(options.derived || {}).forEach(function (k) { derivedGroups[k] = list[options.derived[k]]; });
    var state = window.gridmap;
    var info = state.tiles = { requests: 0, loaded: 0, errors: 0, features: {}, firstDrawn: null, layers: {} };
    var filter = { status: options.default_status || [], category: "", days: 0 };
    var measure = options.choropleth ? options.choropleth.initial : null;
    var now = options.now ? new Date(options.now) : new Date();
    var radius = options.radius_m || 500;
    var counter = 0;

    function query(source) {
      var q = [];
      if (state.gcj02) q.push("gcj02=1");
      if (source === "incidents" && info.incidentQuery) {   // a page's own filters (the dispatch console's)
        Object.keys(info.incidentQuery).forEach(function (k) {
          [].concat(info.incidentQuery[k]).forEach(function (v) {
            if (v !== "" && v != null && v !== false) q.push(k + "=" + encodeURIComponent(v));
          });
        });
      } else if (source === "incidents") {
        filter.status.forEach(function (s) { q.push("status=" + encodeURIComponent(s)); });
        if (filter.category) q.push("category=" + encodeURIComponent(filter.category));
        if (filter.days) q.push("since=" + encodeURIComponent(new Date(now - filter.days * 86400000).toISOString()));
      }
      if (source === "coverage" && options.scenario) q.push("scenario=" + encodeURIComponent(options.scenario));
      return q.length ? "?" + q.join("&") : "";
    }
    function url(source) { return options.base + "/" + source + "/{z}/{x}/{y}.pbf" + query(source); }

    var grids = options.choropleth ? options.choropleth.measures : {};
    var statuses = options.statuses;
    var styles = {
      grids: function (p) {
        var m = grids[measure];
        return { fill: true, fillColor: colour(p[m.field] || 0, m), fillOpacity: 0.55, color: "#3b3b3b", weight: 1.2 };
      },
      buildings: function () {
        return { fill: true, fillColor: "#8c6d46", fillOpacity: 0.75, color: "#4d3b26", weight: 0.6 };
      },
      stations: function () {
        return { radius: 7, fill: true, fillColor: "#c0392b", fillOpacity: 0.95, color: "#fff", weight: 2 };
      },
      regions: function (p) {
        return L.extend({ fill: false, fillOpacity: 0 }, LEVELS[p.level] || LEVELS.community);
      },
      precincts: function () {
        return { fill: true, fillColor: "#1a5276", fillOpacity: 0.04, color: "#1a5276", weight: 2.5, dashArray: "10 6" };
      },
      units: function () {
        return { radius: 6, fill: true, fillColor: "#16a085", fillOpacity: 0.95, color: "#fff", weight: 2 };
      },
      coverage: function (p) {
        var d = p.distance_m == null ? Infinity : p.distance_m, c = DISTANCE[DISTANCE.length - 1][1];
        for (var i = 0; i < DISTANCE.length; i++) if (d <= DISTANCE[i][0]) { c = DISTANCE[i][1]; break; }
        return { fill: true, fillColor: c, fillOpacity: 0.8, color: "#555", weight: 0.5 };
      },
      uncovered: function (p) {   // only the buildings beyond the service radius
        if (p.distance_m != null && p.distance_m <= radius) return [];
        return { fill: true, fillColor: "#c0392b", fillOpacity: 0.9, color: "#7b241c", weight: 2 };
      },
      incidents: function (p) {
        if (p.count != null) {   // a server cluster: size by count, red when any is overdue
          return { radius: Math.min(8 + 3 * Math.sqrt(p.count), 30), fill: true, fillOpacity: 0.7,
            fillColor: p.overdue ? "#c0392b" : (p.open ? "#e67e22" : "#7f8c8d"), color: "#fff", weight: 2 };
        }
        var st = statuses[p.status] || { color: "#777" };
        return { radius: 7, fill: true, fillColor: st.color, fillOpacity: 0.95,
          color: p.overdue ? "#c0392b" : "#fff", weight: p.overdue ? 3 : 1.5 };
      }
    };

    var popups = {
      grids: function (p) {
        return table([["网格", p.name], ["社区", p.community], ["网格员", p.workers], ["楼栋", p.buildings, ""],
          ["户数", p.households], ["未办结事件", p.open], ["超期", p.overdue]]);
      },
      buildings: function (p) {
        return table([["楼栋", p.name], ["户数", p.households != null ? p.households + " 户" : ""],
          ["人口", p.population != null ? p.population + " 人" : ""], ["网格", p.grid_name]]);
      },
      stations: function (p) {
        return table([["名称", p.name], ["类型", p.kind], ["社区", p.community], ["地址", p.address]]);
      },
      regions: function (p) { return table([["名称", p.name], ["级别", p.level_name]]); },
      precincts: function (p) { return table([["派出所", p.name], ["电话", p.phone]]); },
      units: function (p) { return table([["单位", p.name], ["类别", p.category], ["可提供", p.resources || "—"]]); },
      coverage: function (p) {
        return table([["楼栋", p.name], ["户数", p.households != null ? p.households + " 户" : ""],
          ["最近服务站", p.station], ["直线距离", p.distance_m != null ? p.distance_m + " 米" : "无服务站"],
          ["网格", p.grid_name]]);
      },
      incidents: function (p) {
        if (p.count != null) {
          return table([["事件", p.count + " 件"], ["未办结", p.open + " 件"], ["超期", p.overdue + " 件"],
            ["", "放大查看每一件"]]);
        }
        var st = statuses[p.status] || { color: "#777", label: p.status };
        return table([["类别", (p.group ? p.group + " / " : "") + (p.category || "")],
          ["上报时间", GM.fmtTime(p.reported_at)],
          ["状态", '<b style="color:' + st.color + '">' + esc(st.label) + "</b>" +
            (p.overdue ? ' <span class="gm-tag gm-red">超期</span>' : "") +
            (p.supervised ? ' <span class="gm-tag">督办</span>' : ""), true],
          ["处置人", p.assignee !== undefined ? (p.assignee || "未派遣") : ""],
          ["办结时限", GM.fmtTime(p.due_at)], ["网格", p.grid_name || p.grid], ["编号", p.id],
          ["", options.incident_link && p.id ? '<a class="gm-open" href="' +
            esc(options.incident_link.replace("{id}", encodeURIComponent(p.id))) + '">打开处置页</a>' : "", true]]);
      }
    };

    /** A co-governance layer (needs, resources, projects, patrol coverage) is described by its options: the
     *  property its colour follows (spec.point or spec.polygon: {by, colors, default}) and its popup fields
     *  [[label, property, unit]], the same description the embedded maps draw from (gridmap/layers/record_layer.py). */
    function recordStyle(spec) {
      var s = spec.point || spec.polygon;
      return function (p) {
        var c = s.colors[p[s.by]] || s.default;
        if (spec.point) return { radius: 7, fill: true, fillColor: c, fillOpacity: 0.95, color: "#fff", weight: 2 };
        return { fill: true, fillColor: c, fillOpacity: 0.8, color: "#4d4d4d", weight: 0.8 };
      };
    }
    function recordPopup(spec) {
      return function (p) {
        return table(spec.popup.map(function (f) { return [f[0], p[f[1]] != null && p[f[1]] !== "" ? p[f[1]] + (f[2] || "") : ""]; }));
      };
    }
    options.layers.forEach(function (spec) {
      if (spec.popup && !popups[spec.id]) popups[spec.id] = recordPopup(spec);
    });

    function make(spec) {
      var layer = spec.id, source = spec.source || layer, layerStyles = {};
      layerStyles[source] = styles[layer] || recordStyle(spec);
      var vg = L.vectorGrid.protobuf(url(source), {
        rendererFactory: L.canvas.tile,
        vectorTileLayerStyles: layerStyles,
        interactive: spec.interactive !== false,
        className: "gm-vg",   // its canvases let clicks through to the map, which looks features up (below)
        maxNativeZoom: options.max_native_zoom,
        minZoom: spec.min_zoom || 0,
        getFeatureId: function (f) { return f.properties.code || f.properties.id || "c" + (++counter); },
        fetchOptions: { credentials: "same-origin" }
      });
      vg.gmSource = source;
      info.features[layer] = 0;
      vg.on("tileloadstart", function () { info.requests += 1; });
      vg.on("tileload", function (e) {
        info.loaded += 1;
        var key = vg._tileCoordsToKey(e.coords), tile = vg._vectorTiles[key];
        var n = tile && tile._features ? Object.keys(tile._features).length : 0;
        info.features[layer] += n;
        if (n && info.firstDrawn === null) info.firstDrawn = performance.now();
      });
      vg.on("tileerror", function () { info.errors += 1; });
      vg.on("click", function (e) { open(popups[layer] ? layer : source, e.layer.properties || {}, e.latlng); });
      vg.gmShift = function () { vg.setUrl(url(source)); };   // the server shifts: ask again in the new datum
      vg.gmRefresh = function () { vg.setUrl(url(source)); };
      groups[layer].addLayer(vg);
      info.layers[layer] = vg;
      return vg;
    }

    /** Leaflet layers made from the features of a tile layer's loaded tiles (current zoom only), kept while the
     *  tile is; ``make(properties, latlng)`` returns the layers of one feature, ``key`` dedupes across tiles. */
    function derive(vg, target, make, key, changed) {
      var byTile = {}, seen = {};
      target.gmShift = function () {};   // drawn from tiles that the server already shifted
      function drop(k) {
        (byTile[k] || []).forEach(function (entry) {
          if (--seen[entry.id].n === 0) { entry.layers.forEach(function (l) { target.removeLayer(l); }); delete seen[entry.id]; }
        });
        delete byTile[k];
      }
      vg.on("tileload", function (e) {
        var k = vg._tileCoordsToKey(e.coords), tile = vg._vectorTiles[k];
        drop(k);
        if (!tile || !tile._features) return;
        var origin = e.coords.scaleBy(vg.getTileSize()), entries = [];
        Object.keys(tile._features).forEach(function (id) {
          var f = tile._features[id].feature;
          if (!f._point) return;
          var ll = map.unproject(origin.add(f._point), e.coords.z), p = f.properties || {};
          var name = key ? key(p, ll) : id + "@" + k;
          if (seen[name]) { seen[name].n += 1; entries.push({ id: name, layers: seen[name].layers }); return; }
          var made = make(p, ll) || [];
          made.forEach(function (l) { target.addLayer(l); });
          seen[name] = { n: 1, layers: made };
          entries.push({ id: name, layers: made });
        });
        byTile[k] = entries;
        if (changed) changed();
      });
      vg.on("tileunload", function (e) { drop(vg._tileCoordsToKey(e.coords)); if (changed) changed(); });
      return { entries: function () { return Object.keys(seen).map(function (n) { return seen[n]; }); } };
    }

    function open(layer, properties, latlng) {
      L.popup({ maxWidth: 300 }).setLatLng(latlng).setContent(popups[layer](properties)).openOn(map);
      state.popup = { layer: layer, properties: properties };
      map.fire("gm:feature", { layer: layer, properties: properties, latlng: latlng });   // pages that follow clicks
    }

    /** The feature of ``layer`` drawn under ``latlng`` in the loaded tiles, or null. */
    function hit(layer, latlng) {
      var vg = info.layers[layer];
      if (vg.options.interactive === false) return null;
      if (!vg._map || vg._tileZoom === undefined) return null;
      var size = vg.getTileSize(), p = map.project(latlng, vg._tileZoom);
      var coords = p.unscaleBy(size).floor();
      coords.z = vg._tileZoom;
      var tile = vg._vectorTiles[vg._tileCoordsToKey(coords)];
      if (!tile || !tile._features) return null;
      var local = p.subtract(coords.scaleBy(size)), found = null;
      Object.keys(tile._features).forEach(function (id) {
        var f = tile._features[id].feature;
        if (!found && f._containsPoint && f._containsPoint(local)) found = f;
      });
      return found;
    }

    options.layers.forEach(make);

    // Numbers on the server's clusters (below the points zoom), so counts read without a click.
    if (info.layers.incidents) {
      var labels = L.layerGroup();
      groups.incidents.addLayer(labels);
      info.clusterLabels = labels;
      derive(info.layers.incidents, labels, function (p, ll) {
        if (p.count == null) return [];
        return [L.marker(ll, { interactive: false, keyboard: false, icon: L.divIcon({
          className: "gm-cluster-count", html: "<span>" + p.count + "</span>", iconSize: [0, 0] }) })];
      });
    }
    // Density: a heat map of what the incident tiles in view hold (a cluster weighs its count).
    if (derivedGroups.heat && info.layers.incidents && L.heatLayer) {
      var heat = L.heatLayer([], { radius: 22, blur: 16, maxZoom: 17, minOpacity: 0.35 });
      heat.gmShift = function () {};
      derivedGroups.heat.addLayer(heat);
      var pending = null, points = derive(info.layers.incidents, L.layerGroup(), function (p, ll) {
        var m = L.marker(ll); m.gmWeight = p.count != null ? p.count : 1; return [m];
      }, null, function () {
        if (pending) return;
        pending = setTimeout(function () {
          pending = null;
          var rows = [], top = 1;
          points.entries().forEach(function (e) {
            e.layers.forEach(function (m) { var ll = m.getLatLng(); rows.push([ll.lat, ll.lng, m.gmWeight]); top = Math.max(top, m.gmWeight); });
          });
          if (heat._map) { heat.setOptions({ max: top }); heat.setLatLngs(rows); }
          else { heat.options.max = top; heat._latlngs = rows; }   // Leaflet.heat redraws only on a map
        }, 50);
      });
      info.heat = heat;
    }
    // Stations' service rings (metres), for every station in the loaded tiles.
    if (derivedGroups.rings && info.layers.stations) {
      var rings = options.rings || [];
      info.rings = derive(info.layers.stations, derivedGroups.rings, function (p, ll) {
        return rings.slice().sort(function (a, b) { return b[0] - a[0]; }).map(function (r) {
          return L.circle(ll, { radius: r[0], color: r[1], weight: 1.2, dashArray: "5 4", fill: false, interactive: false });
        });
      }, function (p, ll) { return p.code || ll.toString(); });
    }

    // Each layer draws on its own canvases, which would swallow a click that none of their features
    // took: the canvases let clicks through (.gm-vg) and the map looks the click up in every layer,
    // topmost first.
    var order = ["incidents", "needs", "projects", "resources", "stations", "units", "uncovered", "coverage",
      "patrol_coverage", "buildings", "grids", "precincts"];
    map.on("click", function (e) {
      for (var i = 0; i < order.length; i++) {
        if (!info.layers[order[i]] || !info.layers[order[i]]._map) continue;
        var f = hit(order[i], e.latlng);
        if (f) { open(order[i], f.properties || {}, e.latlng); return; }
      }
    });

    /** True once every tile the layers on the map asked for has arrived. */
    info.settled = function () {
      return Object.keys(info.layers).every(function (k) {
        var l = info.layers[k];
        return !l._map || l._tileZoom === undefined || l._noTilesToLoad();
      });
    };

    /** What the visible tiles of a layer hold: feature count, and for incidents the sum of cluster counts. */
    info.visible = function (layer) {
      var vg = info.layers[layer], n = 0, total = 0;
      Object.keys(vg._vectorTiles || {}).forEach(function (k) {
        var t = vg._vectorTiles[k];
        if (!vg._tiles[k] || !t._features || +k.split(":")[2] !== vg._tileZoom) return;
        Object.keys(t._features).forEach(function (id) {
          var p = t._features[id].feature.properties || {};
          n += 1; total += p.count != null ? p.count : 1;
        });
      });
      return { features: n, incidents: total };
    };

    // grids coloured by open or overdue incidents: a switch that restyles the tiles already loaded
    if (options.choropleth) {
    var switcher = L.control({ position: "topright" });
    switcher.onAdd = function () {
      var div = L.DomUtil.create("div", "gm-switch");
      div.innerHTML = '<div class="gm-section-title">网格着色</div>' + Object.keys(grids).map(function (k) {
        return '<label><input type="radio" name="gm-measure" value="' + k + '"' + (k === measure ? " checked" : "") +
          "> " + esc(grids[k].label) + "</label>";
      }).join("");
      L.DomEvent.disableClickPropagation(div);
      div.addEventListener("change", function (e) {
        measure = e.target.value;
        info.layers.grids.redraw();
        GM.setLegendSection({ id: "grids", title: grids[measure].legend, items: grids[measure].items });
        state.choropleth = measure;
      });
      return div;
    };
    switcher.addTo(map);
    state.choropleth = measure;
    }

    // the incident filter panel: sent to the server, which answers new tiles
    if (options.filters && info.layers.incidents) {
    var panel = L.control({ position: "topright" });
    panel.onAdd = function () {
      var div = L.DomUtil.create("div", "gm-filter");
      var st = Object.keys(statuses).map(function (k) {
        return '<option value="' + k + '">' + esc(statuses[k].label) + "</option>";
      }).join("");
      var gr = options.groups.map(function (g) { return '<option value="' + esc(g[0]) + '">' + esc(g[1]) + "</option>"; }).join("");
      div.innerHTML = '<div class="gm-section-title">事件筛选</div>' +
        '<label>状态 <select name="status"><option value="">全部</option><option value="@open">未办结</option>' + st + "</select></label>" +
        '<label>类别 <select name="group"><option value="">全部</option>' + gr + "</select></label>" +
        '<label>时段 <select name="days"><option value="0">全部</option><option value="1">近 24 小时</option>' +
        '<option value="7">近 7 天</option><option value="30">近 30 天</option></select></label>' +
        '<div class="gm-count gm-muted">低缩放级别显示聚合数，放大到 ' + options.points_min_zoom + ' 级显示每一件</div>';
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      div.querySelector('[name="status"]').value = options.default_status_choice || "";
      div.addEventListener("change", function () {
        var s = div.querySelector('[name="status"]').value;
        filter.status = s === "@open" ? options.open_statuses : (s ? [s] : []);
        filter.category = div.querySelector('[name="group"]').value;
        filter.days = parseInt(div.querySelector('[name="days"]').value, 10);
        state.filter = { status: filter.status.slice(), category: filter.category, days: filter.days };
        info.layers.incidents.gmRefresh();
      });
      return div;
    };
    panel.addTo(map);
    state.filter = { status: filter.status.slice(), category: filter.category, days: filter.days };
    }
    return info;
  };
})();
