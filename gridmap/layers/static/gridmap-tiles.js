/* gridmap tiled layers: grids, buildings, stations and incidents drawn from /tiles/{layer}/{z}/{x}/{y}.pbf
 * with Leaflet.VectorGrid, so a page holds no data and each pan or zoom fetches only what the view shows.
 *
 * The server does the work: simplification per zoom, buildings only from street zoom, incident clusters
 * (counts per tile cell) at low zoom, the incident filters (sent as query parameters), the caller's view
 * of the incidents, and the GCJ-02 shift (gcj02=1 while 高德 is the basemap). Popups are built here
 * from tile properties. Tests and benchmarks read window.gridmap.tiles.
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

  GM.tiles = function (map, gridsGroup, buildingsGroup, stationsGroup, incidentsGroup, options) {
    var groups = { grids: gridsGroup, buildings: buildingsGroup, stations: stationsGroup, incidents: incidentsGroup };
    var state = window.gridmap;
    var info = state.tiles = { requests: 0, loaded: 0, errors: 0, features: {}, firstDrawn: null, layers: {} };
    var filter = { status: options.default_status || [], category: "", days: 0 };
    var measure = options.choropleth.initial;
    var now = options.now ? new Date(options.now) : new Date();
    var counter = 0;

    function query(layer) {
      var q = [];
      if (state.gcj02) q.push("gcj02=1");
      if (layer === "incidents") {
        filter.status.forEach(function (s) { q.push("status=" + encodeURIComponent(s)); });
        if (filter.category) q.push("category=" + encodeURIComponent(filter.category));
        if (filter.days) q.push("since=" + encodeURIComponent(new Date(now - filter.days * 86400000).toISOString()));
      }
      return q.length ? "?" + q.join("&") : "";
    }
    function url(layer) { return options.base + "/" + layer + "/{z}/{x}/{y}.pbf" + query(layer); }

    var grids = options.choropleth.measures;
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
          ["办结时限", GM.fmtTime(p.due_at)], ["网格", p.grid_name || p.grid], ["编号", p.id]]);
      }
    };

    function make(layer) {
      var layerStyles = {};
      layerStyles[layer] = styles[layer];
      var vg = L.vectorGrid.protobuf(url(layer), {
        rendererFactory: L.canvas.tile,
        vectorTileLayerStyles: layerStyles,
        interactive: true,
        maxNativeZoom: options.max_native_zoom,
        minZoom: options.min_zoom[layer] || 0,
        getFeatureId: function (f) { return f.properties.code || f.properties.id || "c" + (++counter); },
        fetchOptions: { credentials: "same-origin" }
      });
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
      vg.on("click", function (e) { open(layer, e.layer.properties || {}, e.latlng); });
      vg.gmShift = function () { vg.setUrl(url(layer)); };   // the server shifts: ask again in the new datum
      vg.gmRefresh = function () { vg.setUrl(url(layer)); };
      groups[layer].addLayer(vg);
      info.layers[layer] = vg;
      return vg;
    }
    function open(layer, properties, latlng) {
      L.popup({ maxWidth: 300 }).setLatLng(latlng).setContent(popups[layer](properties)).openOn(map);
      state.popup = { layer: layer, properties: properties };
    }

    /** The feature of ``layer`` drawn under ``latlng`` in the loaded tiles, or null. */
    function hit(layer, latlng) {
      var vg = info.layers[layer];
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

    ["grids", "buildings", "stations", "incidents"].forEach(make);

    // Each layer draws on its own canvases and only the top one hears a click: a click that no
    // feature of the top layer took is looked up in the layers below, topmost first.
    map.on("click", function (e) {
      var order = ["incidents", "stations", "buildings", "grids"];
      for (var i = 0; i < order.length; i++) {
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

    // the incident filter panel: sent to the server, which answers new tiles
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
    return info;
  };
})();
