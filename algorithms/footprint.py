"""Processing algorithm "Footprint summary": mine land by commodity, country, biome and grid cell.

A thin wrapper: reads the clustered polygons (and optional points, countries, biomes) with
layer_io (in EPSG:4326), calls ``core.footprint.summarise`` and writes the tables, the grid, the
commodity raster (GeoTIFF), the plots and the HTML report. Nothing scientific happens here.
"""
import json
import os
import tempfile
import time

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingMultiStepFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsWkbTypes,
)

from . import compat, layer_io, provenance
from .base import MineClustersAlgorithm


class FootprintSummaryAlgorithm(MineClustersAlgorithm):
    INPUT = "INPUT"
    POINTS = "POINTS"
    COUNTRIES = "COUNTRIES"
    COUNTRY_FIELD = "COUNTRY_FIELD"
    BIOMES = "BIOMES"
    BIOME_FIELD = "BIOME_FIELD"
    CELL_SIZE = "CELL_SIZE"
    ALLOCATION = "ALLOCATION"
    TOP_N = "TOP_N"
    OUTPUT_COMMODITY = "OUTPUT_COMMODITY"
    OUTPUT_COUNTRY = "OUTPUT_COUNTRY"
    OUTPUT_BIOME = "OUTPUT_BIOME"
    OUTPUT_TABLE2 = "OUTPUT_TABLE2"
    OUTPUT_TABLE3 = "OUTPUT_TABLE3"
    OUTPUT_GRID = "OUTPUT_GRID"
    RASTER_CELL_DEG = "RASTER_CELL_DEG"
    OUTPUT_RASTER = "OUTPUT_RASTER"
    PLOT_COMMODITY = "PLOT_COMMODITY"
    PLOT_COUNTRY = "PLOT_COUNTRY"
    PLOT_BIOME = "PLOT_BIOME"
    PLOT_GRID = "PLOT_GRID"
    REPORT = "REPORT"
    TOTAL_AREA_KM2 = "TOTAL_AREA_KM2"
    ASSIGNED_AREA_PCT = "ASSIGNED_AREA_PCT"
    N_POLYGONS = "N_POLYGONS"
    N_CELLS = "N_CELLS"

    ALLOCATIONS = ("intersection", "centroid")
    REQUIRED = ("cluster_id", "primary_commodities")
    OPTIONAL = ("status", "area_m2", "sources")

    HELP_ANCHOR = "the-other-algorithms"

    def name(self):
        return "footprintsummary"

    def displayName(self):  # noqa: N802
        return self.tr("Footprint summary")

    def group(self):
        return self.tr("Footprint")

    def groupId(self):  # noqa: N802
        return "footprint"

    def tags(self):
        return self.tr(
            "mining,mine,land use,footprint,mine area,area,commodity,commodities,primary "
            "commodity,country,countries,biome,biomes,ecoregions,grid,equal-area grid,dominant "
            "commodity,table,Table 2,Table 3,statistics,summary,report,plot,raster,GeoTIFF,"
            "land use raster,LCA,life cycle assessment,input-output,Maus").split(",")

    def help_html(self):
        return self.tr(
            "Mine land by primary commodity, country, biome and grid cell from the clustered "
            "polygons of the cluster algorithm (Maus et al. 2025, Tables 2-3, Figs. 9-10).<br><br>"
            "The area of a polygon (its <i>area_m2</i>, else its area on the sphere) whose cluster "
            "has n primary commodities is split equally among them; unassigned polygons count as "
            "<i>Unknown</i>. Countries and biomes: by default each polygon's area is split by its "
            "intersection with the regions, the part outside all of them is reported as "
            "<i>Outside</i>; the paper's rule gives the whole polygon to the region nearest its "
            "centroid. Every table sums to the total polygon area.<br><br>"
            "The grid has equal-area cells (exactly cell size² on the sphere R = 6,371,008.8 m, "
            "bounded by parallels and meridians, nearly square on the ground) holding the area "
            "per commodity and the dominant commodity, styled by it (Fig. 10).<br><br>"
            "The commodity raster (optional GeoTIFF, EPSG:4326) holds the km² of mine land per "
            "cell of a regular longitude/latitude grid, one band per primary commodity (and "
            "<i>Unknown</i>) in the order of the commodity table; polygons are split between cells "
            "by their area on the sphere and among commodities as in the tables, so the bands sum "
            "to the commodity table. Its cells lie on the global lattice from (-180°, 90°), so "
            "rasters of different runs align.<br><br>"
            "Table 2 counts every cluster and every point of the cluster output when the "
            "clustered points are given (clusters of points only included, with no area), else "
            "the clusters holding polygons. Table 3 needs a <i>sources</i> field (from the "
            "harmonise algorithm). "
            "Tables can be saved as CSV; the HTML report embeds the plots and writes every table "
            "as CSV into a folder next to it.")

    def initAlgorithm(self, config=None):  # noqa: N802
        tr = self.tr
        self.add_parameter(QgsProcessingParameterFeatureSource(
            self.INPUT, tr("Clustered polygons"), [QgsProcessing.SourceType.TypeVectorPolygon]),
            tr("The 'Clustered polygons' output of the cluster algorithm, in any CRS (read in "
               "EPSG:4326). It needs the cluster_id and primary_commodities fields; status, "
               "area_m2 (else the area on the sphere is used) and sources (for Table 3) are read "
               "when present."))
        self.add_parameter(QgsProcessingParameterFeatureSource(
            self.POINTS, tr("Clustered points (optional, for Table 2)"),
            [QgsProcessing.SourceType.TypeVectorPoint], optional=True),
            tr("The 'Clustered points' output of the cluster algorithm (cluster_id and "
               "primary_commodities fields). Given: Table 2 counts every point and every "
               "cluster, points-only clusters included. Empty (default): Table 2 counts the "
               "clusters holding polygons."))
        self.add_parameter(QgsProcessingParameterFeatureSource(
            self.COUNTRIES, tr("Countries"), [QgsProcessing.SourceType.TypeVectorPolygon],
            optional=True),
            tr("Country polygons (e.g. Natural Earth admin 0), in any CRS, for the table and "
               "plot of mine area by country and commodity. Empty (default): no country "
               "table."))
        self.add_parameter(QgsProcessingParameterField(
            self.COUNTRY_FIELD, tr("Country name field"), defaultValue="name",
            parentLayerParameterName=self.COUNTRIES, optional=True),
            tr("The field of the country layer that names each country (its values become the "
               "region column of the country table). Default: name."))
        self.add_parameter(QgsProcessingParameterFeatureSource(
            self.BIOMES, tr("Biomes or ecoregions"),
            [QgsProcessing.SourceType.TypeVectorPolygon], optional=True),
            tr("Biome or ecoregion polygons (e.g. RESOLVE Ecoregions 2017), in any CRS, for the "
               "table and plot of mine area by biome and commodity. Empty (default): no biome "
               "table."))
        self.add_parameter(QgsProcessingParameterField(
            self.BIOME_FIELD, tr("Biome name field"), defaultValue="BIOME_NAME",
            parentLayerParameterName=self.BIOMES, optional=True),
            tr("The field of the biome layer that names each biome (its values become the region "
               "column of the biome table). Default: BIOME_NAME, as in RESOLVE Ecoregions."))
        self.add_parameter(QgsProcessingParameterNumber(
            self.CELL_SIZE, tr("Grid cell size (m; 0 = no grid)"),
            QgsProcessingParameterNumber.Type.Double,
            defaultValue=50000.0, minValue=0.0, maxValue=2000000.0),
            tr("Side of the equal-area grid cells in metres: each cell has exactly this size "
               "squared on the sphere. Default 50,000 m (50 km cells, as in Fig. 10); at least "
               "1,000 m, or 0 for no grid."), decimals=0)
        self.add_parameter(QgsProcessingParameterNumber(
            self.RASTER_CELL_DEG, tr("Raster cell size (degrees)"),
            QgsProcessingParameterNumber.Type.Double, defaultValue=0.5),
            tr("Side of the commodity raster's cells in degrees of longitude and latitude, for "
               "the 'Mine area raster by commodity' output only. It must divide 180° into whole "
               "cells (0.5, 0.25, 0.1, 0.05, 1 ...: 180/n for a whole n), so that the "
               "cells lie on one global lattice from (-180°, 90°) and rasters of different runs "
               "align."), decimals=3)
        self.add_parameter(QgsProcessingParameterEnum(
            self.ALLOCATION, tr("Region allocation"),
            options=[tr("Split each polygon by intersection with the regions"),
                     tr("Whole polygon to the region nearest its centroid (paper)")],
            defaultValue=0),
            tr("How a polygon's area goes to the countries and biomes. Split (default): by its "
               "intersection with the regions, the part outside all of them is 'Outside'. "
               "Nearest: the whole polygon to the region nearest its centroid, as in the paper."))
        self.add_parameter(QgsProcessingParameterNumber(
            self.TOP_N, tr("Countries shown in the plot"),
            QgsProcessingParameterNumber.Type.Integer,
            defaultValue=15, minValue=1, maxValue=100),
            tr("How many countries with the most mine area the country plot shows (1 to 100, "
               "default 15); the others are summed into one 'Rest of the world' bar."),
            advanced=True)

        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_COMMODITY, tr("Area by commodity"), QgsProcessing.SourceType.TypeVector,
            optional=True, createByDefault=True),
            tr("Table with one row per primary commodity (Unknown for unassigned polygons): "
               "commodity, area_km2, area_pct, n_polygons and n_clusters."))
        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_COUNTRY, tr("Area by country and commodity"),
            QgsProcessing.SourceType.TypeVector, optional=True, createByDefault=True),
            tr("Table with one row per country and commodity (region, commodity, area_km2, "
               "area_pct, region_pct); empty without a country layer."))
        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_BIOME, tr("Area by biome and commodity"),
            QgsProcessing.SourceType.TypeVector, optional=True, createByDefault=True),
            tr("Table with one row per biome and commodity (region, commodity, area_km2, "
               "area_pct, region_pct); empty without a biome layer."))
        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_TABLE2, tr("Table 2: assigned and unassigned clusters"),
            QgsProcessing.SourceType.TypeVector, optional=True, createByDefault=True),
            tr("The paper's Table 2: area, clusters, polygons and points of the assigned and "
               "unassigned clusters and their total, with shares and per-cluster means."))
        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_TABLE3, tr("Table 3: polygons by status and data source"),
            QgsProcessing.SourceType.TypeVector, optional=True, createByDefault=True),
            tr("The paper's Table 3: area and polygon counts by status (assigned, unassigned) "
               "and data source; empty when the clustered polygons have no sources field."))
        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_GRID, tr("Dominant commodity grid"),
            QgsProcessing.SourceType.TypeVectorPolygon, optional=True, createByDefault=True),
            tr("The equal-area cells holding mine land, in EPSG:4326: mine area, the dominant "
               "commodity and its share, and the area of every commodity, styled by the dominant "
               "commodity (Fig. 10)."))
        self.add_parameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_RASTER, tr("Mine area raster by commodity"), optional=True,
            createByDefault=False),
            tr("A GeoTIFF (EPSG:4326, DEFLATE, 256 x 256 tiles, Float64, nodata 0) of the km² of "
               "mine land per cell, one band per primary commodity plus Unknown, named after it, "
               "in the commodity table's order; the bands sum to the commodity table. It covers "
               "the data's extent on the global lattice of the raster cell size (the whole globe "
               "for cells of 0.5° or more). Not written unless a file is given."))
        self.add_parameter(QgsProcessingParameterFileDestination(
            self.PLOT_COMMODITY, tr("Plot: area by commodity"),
            tr("PNG files (*.png);;SVG files (*.svg)"), optional=True, createByDefault=True),
            tr("Bar chart of the mine area by primary commodity (Fig. 9), PNG or SVG by the file "
               "name."))
        self.add_parameter(QgsProcessingParameterFileDestination(
            self.PLOT_COUNTRY, tr("Plot: countries by commodity"),
            tr("PNG files (*.png);;SVG files (*.svg)"), optional=True, createByDefault=True),
            tr("Stacked bars of the mine area of the countries with the most mine land, by "
               "commodity, PNG or SVG by the file name; needs the country layer."))
        self.add_parameter(QgsProcessingParameterFileDestination(
            self.PLOT_BIOME, tr("Plot: biomes by commodity"),
            tr("PNG files (*.png);;SVG files (*.svg)"), optional=True, createByDefault=True),
            tr("Stacked bars of the mine area by commodity of the 30 biomes with the most mine "
               "land (the rest as 'Other biomes'), PNG or SVG by the file name; needs the biome "
               "layer."))
        self.add_parameter(QgsProcessingParameterFileDestination(
            self.REPORT, tr("Footprint report"), tr("HTML files (*.html)"), optional=True,
            createByDefault=True),
            tr("An HTML page with every table and plot; the tables are also written as CSV into "
               "a folder next to it, named like the report plus _tables. It opens in the Results "
               "Viewer."))
        self.add_parameter(QgsProcessingParameterFileDestination(
            self.PLOT_GRID, tr("Plot: map of the dominant commodity grid"),
            tr("PNG files (*.png);;SVG files (*.svg)"), optional=True, createByDefault=True),
            tr("Map of the grid cells coloured by dominant commodity (Fig. 10), PNG or SVG by the "
               "file name; not written when there is no grid (cell size 0)."))
        self.addOutput(QgsProcessingOutputNumber(self.TOTAL_AREA_KM2,
                                                 tr("Total mine area (km²)")))
        self.addOutput(QgsProcessingOutputNumber(self.ASSIGNED_AREA_PCT,
                                                 tr("Area assigned to a commodity (%)")))
        self.addOutput(QgsProcessingOutputNumber(self.N_POLYGONS, tr("Number of polygons")))
        self.addOutput(QgsProcessingOutputNumber(self.N_CELLS, tr("Grid cells with mine land")))
        provenance.add_output(self)

    # ---- run ------------------------------------------------------------------------------
    def _regions(self, parameters, src_name, field_name, context, feedback, label, default,
                 progress):
        """The Regions of an optional region layer and its geometries (None, None without)."""
        from ..core import footprint as fp

        src = layer_io.source(self, parameters, src_name, context, optional=True)
        if src is None:
            return None, None
        lname = layer_io.layer_name(parameters, src_name, src)
        layer_io.check_geometry_type(src, layer_io.POLYGON, label, lname,
                                     self.parameterDefinition(src_name).description())
        field = layer_io.chosen_field(self, parameters, field_name, context, src, label, lname,
                                      default=default)
        read = layer_io.read(src, context, feedback, label, lname, layer_io.POLYGON, [field],
                             progress=progress)
        if not read.geoms:
            feedback.pushWarning(self.tr("The {kind} layer '{layer}' has no features; all mine "
                                         "area is reported as 'Outside'.").format(
                kind=label, layer=lname))
        regions = fp.regions(read.geoms, layer_io.texts(read.values[field]),
                             should_stop=feedback.isCanceled, ids=read.ids,
                             layer=self.tr("{kind} layer '{layer}'").format(
                                 kind=label, layer=lname))
        if regions.cut_at_antimeridian:
            feedback.pushInfo(self.tr("Regions of the {kind} layer cut at ±180°: {names}.").format(
                kind=label, names=", ".join(regions.cut_at_antimeridian)))
        return regions, read.geoms

    def compute(self, parameters, context, feedback, outputs):
        from ..core import footprint as fp
        from ..core import report

        tr = self.tr
        clustered_label = tr("clustered polygons")
        source = layer_io.source(self, parameters, self.INPUT, context)
        name = layer_io.layer_name(parameters, self.INPUT, source)
        layer_io.check_geometry_type(source, layer_io.POLYGON, clustered_label, name,
                                     self.parameterDefinition(self.INPUT).description())
        columns = layer_io.plugin_fields(
            source, self.REQUIRED, clustered_label, name,
            tr("use the 'Clustered polygons' output of the cluster algorithm"), self.OPTIONAL)
        layer_io.check_not_empty(source, clustered_label, name,
                                 tr("run the cluster algorithm on mine polygons first"))
        cell = self.parameterAsDouble(parameters, self.CELL_SIZE, context)
        if 0 < cell < 1000:
            raise QgsProcessingException(
                tr("The grid cell size must be 0 (no grid) or at least 1000 m, got {cell:g} "
                   "m.").format(cell=cell))
        allocation = self.ALLOCATIONS[self.parameterAsEnum(parameters, self.ALLOCATION, context)]
        top_n = self.parameterAsInt(parameters, self.TOP_N, context)
        raster_path, raster_deg = self._raster_request(parameters, context)

        steps = QgsProcessingMultiStepFeedback(4, feedback)
        timings, t0 = {}, time.perf_counter()
        feedback.pushInfo(tr("Reading {n} clustered polygons from '{layer}'.").format(
            n=source.featureCount(), layer=name))
        read = layer_io.read(source, context, feedback, clustered_label, name, layer_io.POLYGON,
                             list(columns.values()), progress=steps.setProgress)
        values = {plugin: read.values[field] for plugin, field in columns.items()}
        point_clusters = point_primary = None
        points = layer_io.source(self, parameters, self.POINTS, context, optional=True)
        if points is not None:
            points_label = tr("clustered points")
            pname = layer_io.layer_name(parameters, self.POINTS, points)
            pcolumns = layer_io.plugin_fields(
                points, self.REQUIRED, points_label, pname,
                tr("use the 'Clustered points' output of the cluster algorithm"))
            pread = layer_io.read(points, context, feedback, points_label, pname, None,
                                  list(pcolumns.values()), progress=lambda p: None)
            point_clusters = [None if v is None else int(v)
                              for v in layer_io.numbers(pread.values[pcolumns["cluster_id"]])]
            point_primary = layer_io.texts(pread.values[pcolumns["primary_commodities"]])
        steps.setCurrentStep(1)
        timings["read"], t0 = time.perf_counter() - t0, time.perf_counter()
        countries, country_outlines = self._regions(
            parameters, self.COUNTRIES, self.COUNTRY_FIELD, context, feedback, tr("countries"),
            "name", progress=lambda p: steps.setProgress(0.5 * p))
        biomes, _ = self._regions(parameters, self.BIOMES, self.BIOME_FIELD, context, feedback,
                                  tr("biomes"), "BIOME_NAME",
                                  progress=lambda p: steps.setProgress(50 + 0.5 * p))

        steps.setCurrentStep(2)
        timings["regions"], t0 = time.perf_counter() - t0, time.perf_counter()
        made_by = provenance.record(self, parameters, context)

        def optional_column(field, convert):
            return convert(values[field]) if field in values else None

        polys = fp.mine_polygons(
            read.geoms, read.ids, layer_io.numbers(values["cluster_id"]),
            layer_io.texts(values["primary_commodities"]),
            status=optional_column("status", layer_io.texts),
            area_m2=optional_column("area_m2", layer_io.numbers),
            sources=optional_column("sources", layer_io.texts),
            layer=tr("clustered polygons layer '{layer}'").format(layer=name))
        del read
        summary = fp.summarise(polys, countries, biomes, allocation, cell or None,
                               point_clusters, progress=lambda r: steps.setProgress(100 * r),
                               should_stop=feedback.isCanceled, point_primary=point_primary,
                               raster_cell_deg=raster_deg if raster_path else None)
        feedback.pushInfo(
            tr("Total mine area {area:,.2f} km² in {n} polygons; {pct:.1f} % assigned to a "
               "primary commodity; {n_commodities} commodities; region allocation: "
               "{allocation}.").format(
                area=summary.total_area_m2 / 1e6, n=len(polys), pct=summary.assigned_area_pct,
                n_commodities=len(summary.commodity_rows), allocation=allocation))
        for line in summary.overlap_lines():
            feedback.pushWarning(line)
        if "sources" not in columns:
            feedback.pushInfo(tr("No 'sources' field: Table 3 is empty."))

        steps.setCurrentStep(3)
        timings["summary"], t0 = time.perf_counter() - t0, time.perf_counter()
        tables = ((self.OUTPUT_COMMODITY, fp.COMMODITY_FIELDS, summary.commodity_rows),
                  (self.OUTPUT_COUNTRY, fp.REGION_FIELDS, summary.country_rows),
                  (self.OUTPUT_BIOME, fp.REGION_FIELDS, summary.biome_rows),
                  (self.OUTPUT_TABLE2, fp.TABLE2_FIELDS, summary.table2_rows),
                  (self.OUTPUT_TABLE3, fp.TABLE3_FIELDS, summary.table3_rows))
        for k, (key, schema, rows) in enumerate(tables):
            outputs.table(key, schema, rows)
            steps.setProgress(20.0 * (k + 1) / len(tables))

        timings["tables"], t0 = time.perf_counter() - t0, time.perf_counter()
        grid_rows = [] if summary.grid is None else summary.grid.rows
        grid_schema = fp.GRID_BASE_FIELDS if summary.grid is None else summary.grid.fields
        gfields = compat.fields_from_schema(grid_schema)
        geometries = ((layer_io.output_geometry(w) for w in
                       layer_io.shapely_to_wkb(summary.grid.geometries()))
                      if grid_rows else None)
        outputs.write(self.OUTPUT_GRID, gfields, QgsWkbTypes.Type.Polygon,
                      QgsCoordinateReferenceSystem(layer_io.WGS84),
                      layer_io.records_of(grid_schema, grid_rows, geometries),
                      total=len(grid_rows), progress=lambda p: steps.setProgress(20 + 0.4 * p))
        outputs.style(self.OUTPUT_GRID, "grid")
        steps.setProgress(60)
        layer_io.stop_if_cancelled(feedback)
        timings["grid"], t0 = time.perf_counter() - t0, time.perf_counter()
        self._write_raster(outputs, feedback, steps, summary.raster, raster_path, made_by)
        if summary.raster is not None:
            timings["raster"], t0 = time.perf_counter() - t0, time.perf_counter()

        # The report embeds every plot it has data for, whether or not its file was asked for:
        # a plot not asked for is drawn into a temporary folder that lives as long as this run.
        html = outputs.file(self.REPORT)
        with tempfile.TemporaryDirectory(prefix="mine_clusters_") as scratch:
            images = self._plots(outputs, feedback, steps, summary, countries, biomes, top_n,
                                 country_outlines, scratch if html else None)
            timings["plots"], t0 = time.perf_counter() - t0, time.perf_counter()
            if html:
                csv_dir = outputs.folder(os.path.splitext(html)[0] + "_tables")
                # a section needs its input: no countries layer, no country section
                omit = [key for key, regions in (("country", countries), ("biome", biomes))
                        if regions is None]
                report.footprint_report(summary, html, images=images, csv_dir=csv_dir, intro=[
                    tr("Clustered polygons: {layer} ({n} polygons).").format(
                        layer=name, n=len(polys)), provenance.sentence(made_by),
                    *summary.overlap_lines()], omit=omit)
                feedback.pushInfo(tr("Report written to {path}; tables as CSV in "
                                     "{folder}.").format(path=html, folder=csv_dir))
        layer_io.stop_if_cancelled(feedback)
        timings["report"] = time.perf_counter() - t0
        feedback.pushInfo(tr("Timings: {timings}.").format(
            timings=", ".join(f"{k} {v:.1f} s" for k, v in timings.items())))
        results = dict(outputs.dests)
        results.update({
            self.TOTAL_AREA_KM2: summary.total_area_m2 / 1e6,
            self.ASSIGNED_AREA_PCT: summary.assigned_area_pct,
            self.N_POLYGONS: len(polys),
            self.N_CELLS: len(grid_rows),
        })
        steps.setProgress(100)
        return provenance.finish(self, results, made_by, results.values())

    def _raster_request(self, parameters, context):
        """(GeoTIFF path, cell size in degrees) of the commodity raster, checked before any
        work; (None, None) when no raster is asked for."""
        from ..core import footprint as fp

        if not layer_io.asked(parameters.get(self.OUTPUT_RASTER)):
            return None, None
        path = self.parameterAsOutputLayer(parameters, self.OUTPUT_RASTER, context) or None
        if not path:
            return None, None
        if os.path.splitext(path)[1].lower() not in (".tif", ".tiff"):
            raise QgsProcessingException(
                self.tr("The mine area raster is written as a GeoTIFF, but '{path}' does not end "
                        "in .tif; give a file name ending in .tif.").format(path=path))
        deg = self.parameterAsDouble(parameters, self.RASTER_CELL_DEG, context)
        fp.check_cell_deg(deg)      # InputError: one sentence saying what to choose
        return path, deg

    def _write_raster(self, outputs, feedback, steps, raster, path, made_by):
        """The commodity raster as a GeoTIFF (a cancel deletes it) and its log line."""
        if raster is None:
            outputs.dests[self.OUTPUT_RASTER] = None
            return
        tr = self.tr
        outputs.dests[self.OUTPUT_RASTER] = path      # a later cancel deletes it too
        n_bands, rows, cols = raster.shape
        layer_io.write_geotiff(
            path, raster, raster.geotransform, raster.bands, feedback=feedback,
            progress=lambda p: steps.setProgress(60 + 0.08 * p), unit="km2",
            metadata={"MINE_CLUSTERS_CONTENT": "km2 of mine land per cell and primary commodity",
                      "MINE_CLUSTERS_CELL_DEG": repr(raster.cell_deg),
                      "MINE_CLUSTERS_PROVENANCE": json.dumps(made_by, ensure_ascii=False)})
        x0, y0, x1, y1 = raster.extent
        feedback.pushInfo(
            tr("Raster written to {path}: {cols} x {rows} cells of {cell:g}° from {x0:g}° to "
               "{x1:g}° E, {y0:g}° to {y1:g}° N; {n} bands ({bands}); {total:,.2f} km² of mine "
               "land in all.").format(path=path, cols=cols, rows=rows, cell=raster.cell_deg,
                                      x0=x0, x1=x1, y0=y0, y1=y1, n=n_bands,
                                      bands=", ".join(raster.bands), total=raster.total_km2))
        if raster.unplaced_km2 > 0:
            feedback.pushWarning(
                tr("{area:,.2f} km² of clustered polygons without a geometry (only an area_m2) "
                   "are in the tables but in no raster cell.").format(area=raster.unplaced_km2))
        steps.setProgress(68)

    def _plots(self, outputs, feedback, steps, summary, countries, biomes, top_n,
               country_outlines, scratch):
        """Draws the plots asked for, and for the report (`scratch`: its temporary folder, None
        without a report) those with data; [(path, caption)] of the report's images."""
        from ..core import footprint_plots as fplots

        tr = self.tr

        def target(key, filename, has_data=True):
            """The file to draw plot `key` into: the requested one, else a scratch file for
            the report (None when neither is wanted or there is no data)."""
            path = outputs.file(key)
            if path:
                return path
            if scratch and has_data:
                return os.path.join(scratch, filename)
            return None

        images = []
        plot = target(self.PLOT_COMMODITY, "commodity.png")
        if plot:
            fplots.commodity_plot(summary.commodity_rows, plot)
            images.append((plot, tr("Mine area by primary commodity")))
        for key, rows, title, rest, regions, filename in (
                (self.PLOT_COUNTRY, summary.country_rows, tr("Mine area by country"),
                 fplots.REST, countries, "countries.png"),
                (self.PLOT_BIOME, summary.biome_rows, tr("Mine area by biome"),
                 tr("Other biomes"), biomes, "biomes.png")):
            layer_io.stop_if_cancelled(feedback)
            steps.setProgress(70 if key == self.PLOT_COUNTRY else 75)
            # no regions layer: no section in the report (a requested file is still drawn)
            plot = target(key, filename, has_data=regions is not None)
            if plot:
                fplots.regions_plot(rows, summary.commodity_rows, plot, title,
                                    top_n=top_n if key == self.PLOT_COUNTRY else 30,
                                    rest_label=rest)
                images.append((plot, title))
        layer_io.stop_if_cancelled(feedback)
        steps.setProgress(80)
        has_grid = summary.grid is not None and bool(summary.grid.rows)
        plot = target(self.PLOT_GRID, "grid.png", has_data=has_grid)
        if plot and has_grid:
            fplots.grid_plot(summary.grid, plot, outlines=country_outlines)
            images.append((plot, tr("Dominant primary commodity per grid cell ({km:g} km "
                                    "equal-area cells)").format(km=summary.cell_size_m / 1000)))
        else:
            outputs.dests[self.PLOT_GRID] = None
        layer_io.stop_if_cancelled(feedback)
        steps.setProgress(90)
        return images
