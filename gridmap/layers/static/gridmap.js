/* gridmap map runtime: overlays registry, GCJ-02 basemap switch, legend, search, incident filters.
 *
 * Everything the Python layers draw stays in WGS84. When a basemap whose tiles are in GCJ-02
 * (高德) is selected, every registered overlay is shifted to GCJ-02 and back when another
 * basemap is chosen. Tests and benchmarks read window.gridmap.
 */
(function () {
  "use strict";

  // folium's popups build their HTML with ``$(`<div>…</div>`)[0]``; the maps load no jQuery, so
  // this is the one jQuery call they need.
  if (!window.$) {
    window.$ = function (html) {
      var t = document.createElement("template");
      t.innerHTML = String(html).trim();
      return [t.content.firstChild];
    };
  }

  var A = 6378245.0, EE = 0.00669342162296594323, PI = Math.PI;

  function outOfChina(lng, lat) {
    return !(lng > 72.004 && lng < 137.8347 && lat > 0.8293 && lat < 55.8271);
  }

  function offset(lng, lat) {
    var x = lng - 105.0, y = lat - 35.0;
    var dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x))
      + (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0
      + (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0
      + (160.0 * Math.sin(y / 12.0 * PI) + 320 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
    var dlng = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x))
      + (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0
      + (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0
      + (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
    var radlat = lat / 180.0 * PI, magic = 1 - EE * Math.sin(radlat) * Math.sin(radlat);
    var sqrtmagic = Math.sqrt(magic);
    dlat = (dlat * 180.0) / ((A * (1 - EE)) / (magic * sqrtmagic) * PI);
    dlng = (dlng * 180.0) / (A / sqrtmagic * Math.cos(radlat) * PI);
    return [dlng, dlat];
  }

  /** WGS84 -> GCJ-02 for a Leaflet LatLng (or [lat, lng, ...] array). */
  function toGcj(ll) {
    var isArray = Array.isArray(ll), lat = isArray ? ll[0] : ll.lat, lng = isArray ? ll[1] : ll.lng;
    if (outOfChina(lng, lat)) return isArray ? ll.slice() : L.latLng(lat, lng);
    var d = offset(lng, lat);
    if (isArray) { var out = ll.slice(); out[0] = lat + d[1]; out[1] = lng + d[0]; return out; }
    return L.latLng(lat + d[1], lng + d[0]);
  }

  function mapLatLngs(lls, fn) {
    return lls.map(function (x) {
      if (x instanceof L.LatLng) return fn(x);
      if (Array.isArray(x) && typeof x[0] === "number") return fn(x);
      return mapLatLngs(x, fn);
    });
  }

  function cloneLatLngs(lls) {
    return mapLatLngs(lls, function (x) { return x instanceof L.LatLng ? L.latLng(x.lat, x.lng) : x.slice(); });
  }

  /** Put one layer (and everything inside it) in WGS84 or GCJ-02. */
  function shiftLayer(layer, gcj) {
    if (layer.gmShift) { layer.gmShift(gcj); return; }
    if (layer instanceof L.TileLayer) return;
    if (layer.setLatLngs && layer._latlngs) {           // polylines, polygons, heat layer
      if (!layer._gmWgs) layer._gmWgs = cloneLatLngs(layer._latlngs);
      layer.setLatLngs(gcj ? mapLatLngs(layer._gmWgs, toGcj) : cloneLatLngs(layer._gmWgs));
    } else if (layer.getLatLng && layer.setLatLng) {      // markers, circles
      if (!layer._gmWgs) layer._gmWgs = layer.getLatLng();
      layer.setLatLng(gcj ? toGcj(layer._gmWgs) : layer._gmWgs);
    }
    if (layer.eachLayer) layer.eachLayer(function (child) { shiftLayer(child, gcj); });
    // content drawn only from a zoom level is shifted even while it is off the map
    if (layer.gmInner && !(layer.hasLayer && layer.hasLayer(layer.gmInner))) shiftLayer(layer.gmInner, gcj);
  }

  function fmtTime(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    if (isNaN(d)) return iso;
    var p = function (n) { return (n < 10 ? "0" : "") + n; };
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" + p(d.getMinutes());
  }

  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  var GM = window.GM = {
    toGcj: toGcj,
    esc: esc,
    fmtTime: fmtTime,

    /** The page's state, read by tests: the map, overlays by name, basemap mode. */
    init: function (map, options) {
      var state = window.gridmap = window.gridmap || { overlays: {}, basemaps: {}, gcj02: false, ready: false };
      state.map = map;
      state.options = options || {};
      map.on("baselayerchange", function (e) {
        var gcj = !!(e.layer.options && e.layer.options.gcj02);
        if (gcj === state.gcj02) return;
        state.gcj02 = gcj;
        Object.keys(state.overlays).forEach(function (name) { shiftLayer(state.overlays[name], gcj); });
        map.fire("gm:datum", { gcj02: gcj });
      });
      return state;
    },

    overlay: function (map, name, layer) {
      var state = window.gridmap;
      state.overlays[name] = layer;
      if (state.gcj02) shiftLayer(layer, true);
      return layer;
    },

    basemap: function (map, name, layer) { window.gridmap.basemaps[name] = layer; return layer; },

    /** Draw a layer's content only from ``zoom`` on; the layer itself stays in the layer control. */
    minZoom: function (map, group, inner, zoom, hint) {
      function update() {
        var show = map.getZoom() >= zoom;
        if (show && !group.hasLayer(inner)) group.addLayer(inner);
        if (!show && group.hasLayer(inner)) group.removeLayer(inner);
      }
      map.on("zoomend", update);
      update();
    },

    /** Compact GeoJSON (short property keys) with a palette, a tooltip and a popup table. */
    features: function (map, group, fc, options) {
      var palette = options.palette || ["#888"], base = options.style || {};
      var layer = L.geoJSON(fc, {
        style: function (f) {
          var s = {}; for (var k in base) s[k] = base[k];
          var c = palette[f.properties[options.color_field] || 0];
          s.fillColor = c; if (options.stroke_by_color) s.color = c;
          return s;
        },
        onEachFeature: function (f, l) {
          if (options.tooltip) l.bindTooltip(function () { return esc(f.properties[options.tooltip]); }, { sticky: true });
          if (options.popup) l.bindPopup(function () {
            return '<table class="gm-popup">' + options.popup.map(function (p) {
              var v = f.properties[p[1]];
              if (v == null || v === "") return "";
              return "<tr><th>" + esc(p[0]) + "</th><td>" + esc(p[2] ? v + p[2] : v) + "</td></tr>";
            }).join("") + "</table>";
          });
        }
      });
      if (options.min_zoom) GM.minZoom(map, group, layer, options.min_zoom); else group.addLayer(layer);
      group.gmInner = layer;
      return layer;
    },

    /** A collapsible legend (bottom right) made of sections {id, title, items: [[colour, label, shape]]}. */
    legend: function (map, sections, options) {
      options = options || {};
      var control = L.control({ position: options.position || "bottomleft" });
      control.onAdd = function () {
        var div = L.DomUtil.create("div", "gm-legend" + (options.collapsed ? " gm-collapsed" : ""));
        var head = L.DomUtil.create("div", "gm-legend-head", div);
        head.innerHTML = esc(options.title || "图例") + ' <span class="gm-toggle">▾</span>';
        var body = L.DomUtil.create("div", "gm-legend-body", div);
        body.innerHTML = sections.map(GM.legendSection).join("");
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.on(head, "click", function () { div.classList.toggle("gm-collapsed"); });
        return div;
      };
      control.addTo(map);
      window.gridmap.legend = control;
      return control;
    },

    legendSection: function (s) {
      var items = s.items.map(function (it) {
        var shape = it[2] || "box";
        if (shape === "icon") return '<div class="gm-item"><i class="fa-solid ' + esc(it[0]) + ' gm-legend-icon"></i>' + esc(it[1]) + "</div>";
        return '<div class="gm-item"><i class="gm-swatch gm-' + shape + '" style="background:' + it[0] +
          (shape === "ring" ? ";background:transparent;border-color:" + it[0] : "") + '"></i>' + esc(it[1]) + "</div>";
      }).join("");
      return '<div class="gm-section" data-section="' + esc(s.id || "") + '"><div class="gm-section-title">' +
        esc(s.title) + "</div>" + items + "</div>";
    },

    setLegendSection: function (section) {
      var node = document.querySelector('.gm-section[data-section="' + section.id + '"]');
      if (node) node.outerHTML = GM.legendSection(section);
    },

    /** A title card (top left); on phones it is the worker's header. */
    card: function (map, html, options) {
      var control = L.control({ position: (options && options.position) || "topleft" });
      control.onAdd = function () {
        var div = L.DomUtil.create("div", "gm-card");
        div.innerHTML = html;
        L.DomEvent.disableClickPropagation(div);
        return div;
      };
      control.addTo(map);
      return control;
    },

    /** Grids choropleth with a switch between two measures (open incidents / overdue). */
    choropleth: function (map, layer, options) {
      var current = options.initial;
      function colour(value, m) {
        var c = m.colors[0];
        for (var i = 0; i < m.breaks.length; i++) if (value >= m.breaks[i]) c = m.colors[i + 1];
        return c;
      }
      function apply(key) {
        current = key;
        var m = options.measures[key];
        var style = function (f) {
          return { fillColor: colour(f.properties[m.field] || 0, m), fillOpacity: 0.55, color: "#3b3b3b", weight: 1.2 };
        };
        layer.options.style = style;   // resetStyle (after a hover highlight) keeps the measure's colours
        layer.setStyle(style);
        GM.setLegendSection({ id: "grids", title: m.legend, items: m.items });
        window.gridmap.choropleth = key;
      }
      var control = L.control({ position: "topright" });
      control.onAdd = function () {
        var div = L.DomUtil.create("div", "gm-switch");
        div.innerHTML = '<div class="gm-section-title">网格着色</div>' + Object.keys(options.measures).map(function (k) {
          return '<label><input type="radio" name="gm-measure" value="' + k + '"' + (k === current ? " checked" : "") +
            "> " + esc(options.measures[k].label) + "</label>";
        }).join("");
        L.DomEvent.disableClickPropagation(div);
        div.addEventListener("change", function (e) { apply(e.target.value); });
        return div;
      };
      if (Object.keys(options.measures).length > 1) control.addTo(map);  // no switch without a choice
      map.whenReady(function () { apply(current); });
      return { apply: apply };
    },

    /** Incidents: clustered markers coloured by status, icon by category group; filters; heat map. */
    incidents: function (map, options) {
      var cols = options.columns, rows = options.rows, idx = {};
      cols.forEach(function (c, i) { idx[c] = i; });
      var statuses = options.statuses, groups = options.groups;
      GM.gridNames = options.grid_names || {};
      var cluster = L.markerClusterGroup({ chunkedLoading: true, showCoverageOnHover: false, maxClusterRadius: 45 });
      var heat = options.heat ? L.heatLayer([], { radius: 18, blur: 14, maxZoom: 17, minOpacity: 0.35 }) : null;
      var markers = rows.map(function (r, i) {
        var st = statuses[r[idx.status]] || { color: "#777", label: r[idx.status] };
        var grp = groups[r[idx.group]] || groups[""] || { icon: "fa-circle-exclamation" };
        var ring = r[idx.overdue] ? " gm-overdue" : "";
        var icon = L.divIcon({
          className: "gm-inc",
          html: '<span class="gm-pin' + ring + '" style="background:' + st.color + '"><i class="fa-solid ' + grp.icon + '"></i></span>',
          iconSize: [24, 24], iconAnchor: [12, 12], popupAnchor: [0, -10]
        });
        var m = L.marker([r[idx.lat], r[idx.lon]], { icon: icon, title: r[idx.category_name] });
        m._gmRow = i;
        m.bindPopup(function () { return GM.incidentPopup(r, idx, st); }, { maxWidth: 280 });
        return m;
      });
      var gcj = false;
      var filter = { status: "", group: "", days: 0, open: options.default_status === "@open" };
      if (options.default_status && options.default_status !== "@open") filter.status = options.default_status;
      var now = options.now ? new Date(options.now) : new Date();
      function matches(r) {
        if (filter.status && r[idx.status] !== filter.status) return false;
        if (filter.open && !statuses[r[idx.status]].open) return false;
        if (filter.group && r[idx.group] !== filter.group) return false;
        if (filter.days && (now - new Date(r[idx.reported_at])) > filter.days * 86400000) return false;
        return true;
      }
      function place(m) {
        var r = rows[m._gmRow], ll = L.latLng(r[idx.lat], r[idx.lon]);
        m.setLatLng(gcj ? toGcj(ll) : ll);
      }
      function refresh() {
        var shown = markers.filter(function (m) { return matches(rows[m._gmRow]); });
        shown.forEach(place);
        cluster.clearLayers();
        cluster.addLayers(shown);
        if (heat) heat.setLatLngs(shown.map(function (m) { var ll = m.getLatLng(); return [ll.lat, ll.lng, 1]; }));
        cluster.gmCount = shown.length;
        var counter = document.querySelector(".gm-filter .gm-count");
        if (counter) counter.textContent = "显示 " + shown.length + " / " + rows.length + " 件";
      }
      cluster.gmShift = function (on) { gcj = on; refresh(); };
      if (heat) heat.gmShift = function () {};
      cluster.gmFilter = function (f) { for (var k in f) filter[k] = f[k]; refresh(); };
      cluster.gmMarkers = markers;
      if (options.filters) GM.incidentFilter(map, cluster, options);
      refresh();
      return { cluster: cluster, heat: heat };
    },

    incidentPopup: function (r, idx, st) {
      // a row whose column the page was not given (the public map has no assignee or time limit) is left out
      var needs = { "处置人": "assignee_name", "办结时限": "due_at" };
      var rows = [
        ["类别", (r[idx.group] ? r[idx.group] + " / " : "") + r[idx.category_name]],
        ["上报时间", fmtTime(r[idx.reported_at])],
        ["状态", '<b style="color:' + st.color + '">' + esc(st.label) + "</b>" +
          (r[idx.overdue] ? ' <span class="gm-tag gm-red">超期</span>' : "") +
          (r[idx.supervised] ? ' <span class="gm-tag">督办</span>' : "")],
        ["处置人", r[idx.assignee_name] || "未派遣"],
        ["办结时限", fmtTime(r[idx.due_at])],
        ["网格", (GM.gridNames && GM.gridNames[r[idx.grid_code]]) || r[idx.grid_code] || ""],
        ["编号", r[idx.id]]
      ].filter(function (x) { return !needs[x[0]] || idx[needs[x[0]]] !== undefined; });
      return '<table class="gm-popup">' + rows.map(function (x) {
        return "<tr><th>" + x[0] + "</th><td>" + (x[0] === "状态" ? x[1] : esc(x[1])) + "</td></tr>";
      }).join("") + "</table>";
    },

    incidentFilter: function (map, cluster, options) {
      var control = L.control({ position: "topright" });
      control.onAdd = function () {
        var div = L.DomUtil.create("div", "gm-filter");
        var st = Object.keys(options.statuses).map(function (k) {
          return '<option value="' + k + '">' + esc(options.statuses[k].label) + "</option>";
        }).join("");
        var gr = Object.keys(options.groups).filter(function (k) { return k; }).map(function (k) {
          return '<option value="' + esc(k) + '">' + esc(k) + "</option>";
        }).join("");
        div.innerHTML = '<div class="gm-section-title">事件筛选</div>' +
          '<label>状态 <select name="status"><option value="">全部</option><option value="@open">未办结</option>' + st + "</select></label>" +
          '<label>类别 <select name="group"><option value="">全部</option>' + gr + "</select></label>" +
          '<label>时段 <select name="days"><option value="0">全部</option><option value="1">近 24 小时</option>' +
          '<option value="7">近 7 天</option><option value="30">近 30 天</option></select></label>' +
          '<div class="gm-count"></div>';
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        div.querySelector('[name="status"]').value = options.default_status || "";
        div.addEventListener("change", function () {
          var s = div.querySelector('[name="status"]').value;
          cluster.gmFilter({
            status: s === "@open" ? "" : s, open: s === "@open",
            group: div.querySelector('[name="group"]').value,
            days: parseInt(div.querySelector('[name="days"]').value, 10)
          });
        });
        return div;
      };
      control.addTo(map);
    },

    /** Search box: grid or community names locally, anything else through the address matcher. */
    search: function (map, options) {
      var marker = null;
      var control = L.control({ position: "topleft" });
      control.onAdd = function () {
        var div = L.DomUtil.create("div", "gm-search");
        div.innerHTML = '<form><input type="search" placeholder="搜索地址、网格或社区" aria-label="搜索地址、网格或社区">' +
          '<button type="submit">搜索</button></form><div class="gm-search-result"></div>';
        L.DomEvent.disableClickPropagation(div);
        var form = div.querySelector("form"), input = div.querySelector("input"), out = div.querySelector(".gm-search-result");
        form.addEventListener("submit", function (e) {
          e.preventDefault();
          GM.runSearch(map, options, input.value.trim(), out, function (m) { if (marker) map.removeLayer(marker); marker = m; });
        });
        return div;
      };
      control.addTo(map);
    },

    runSearch: function (map, options, text, out, setMarker) {
      if (!text) return;
      map.closePopup();
      var gcj = window.gridmap.gcj02;
      function bounds(b) {
        var sw = L.latLng(b[1], b[0]), ne = L.latLng(b[3], b[2]);
        return gcj ? L.latLngBounds(toGcj(sw), toGcj(ne)) : L.latLngBounds(sw, ne);
      }
      var local = (options.places || []).filter(function (p) { return p.name === text || p.code === text; })[0] ||
        (options.places || []).filter(function (p) { return p.name.indexOf(text) >= 0; })[0];
      if (local) {
        map.fitBounds(bounds(local.bounds));
        out.textContent = local.kind + "：" + local.name;
        window.gridmap.searchResult = { kind: local.kind, code: local.code, name: local.name };
        return;
      }
      if (!options.api) { out.textContent = "离线文件只能搜索网格和社区名称"; return; }
      out.textContent = "查询中…";
      fetch(options.api + "?address=" + encodeURIComponent(text)).then(function (r) { return r.json(); }).then(function (a) {
        var match = a.match || {};
        if (a.lon != null && a.lat != null) {
          var ll = L.latLng(a.lat, a.lon);
          if (window.gridmap.gcj02) ll = toGcj(ll);
          var m = L.marker(ll, { title: (match.building && match.building.name) || text }).addTo(map);
          var workers = (a.workers || []).map(function (w) { return esc(w.role) + " " + esc(w.name) + " " + esc(w.phone); }).join("<br>");
          m.bindPopup('<div class="gm-popup"><b>' + esc((match.building && match.building.name) || match.address || text) + "</b><br>" +
            esc(match.address || "") + "<br>网格：" + esc(a.grid ? a.grid.name : "无") + "<br>" + workers +
            (match.ambiguous ? '<br><span class="gm-tag gm-red">有歧义，请核实</span>' : "") + "</div>");
          setMarker(m);
          map.setView(ll, options.zoom || 18);
          m.openPopup();
          out.textContent = (match.building ? match.building.name : match.address) + (a.grid ? " · " + a.grid.name : "");
          window.gridmap.searchResult = { kind: "building", code: match.building && match.building.code, lat: a.lat, lon: a.lon,
            grid: a.grid && a.grid.code };
        } else if (a.community && (options.places || []).some(function (p) { return p.code === a.community.code; })) {
          var p = options.places.filter(function (p) { return p.code === a.community.code; })[0];
          map.fitBounds(bounds(p.bounds));
          out.textContent = "社区：" + p.name;
          window.gridmap.searchResult = { kind: "社区", code: p.code, name: p.name };
        } else {
          out.textContent = a.detail || "未找到匹配的地址";
          window.gridmap.searchResult = { kind: "none" };
        }
      }).catch(function () { out.textContent = "查询失败：无法连接地址服务"; });
    },

    /** Signal that the page is drawn: tests and the benchmark wait for this. */
    ready: function (map) {
      map.whenReady(function () {
        window.requestAnimationFrame(function () {
          window.gridmap.ready = true;
          document.documentElement.setAttribute("data-gridmap-ready", "1");
        });
      });
    }
  };
})();
