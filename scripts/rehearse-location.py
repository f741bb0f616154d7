#!/usr/bin/env python3
"""Stands in for Amazon Location during scripts/rehearse.sh: the two requests the
delivery estimator makes of the resourceless APIs, Geocode (geo-places, POST /v2/geocode)
and CalculateRoutes (geo-routes, POST /v2/routes), answered from data/gazetteer.json
with the figures of the local stack's estimator (great-circle distance times the road
factor, at the average speed), so both targets quote the same delivery prices.

Usage: rehearse-location.py [--gazetteer FILE] [--port N]   (0: any free port)
Prints its base URL on the first line of stdout, then serves on 127.0.0.1 until killed.
The functions reach it through AWS_ENDPOINT_URL_GEO_PLACES / AWS_ENDPOINT_URL_GEO_ROUTES.
"""
import argparse
import http.server
import json
import math
import os
import sys
from decimal import ROUND_HALF_EVEN, Decimal

EARTH_RADIUS_KM = 6371.0088
HERE = os.path.dirname(os.path.abspath(__file__))


def normalise(address):
    """Addresses match ignoring case, spacing and punctuation, as in the gazetteer."""
    return "".join(c.lower() for c in address if c.isalnum())


class Gazetteer:
    def __init__(self, path):
        with open(path) as f:
            data = json.load(f)
        self.road_factor = Decimal(data["roadFactor"])
        self.speed_kmh = Decimal(data["averageSpeedKmh"])
        self.places = {normalise(p["address"]): p for p in data["places"]}

    def locate(self, query):
        return self.places.get(normalise(query))

    def route(self, origin, destination):
        """Metres and seconds between two [longitude, latitude] positions, rounded as
        the local estimator rounds: kilometres to two places, seconds to the nearest."""
        (lon1, lat1), (lon2, lat2) = origin, destination
        phi1, phi2 = math.radians(lat1), math.radians(lat2)
        a = (math.sin((phi2 - phi1) / 2) ** 2
             + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
        straight_km = 2.0 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))
        road_km = (Decimal(straight_km) * self.road_factor).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
        seconds = (road_km / self.speed_kmh * 3600).quantize(Decimal(1), ROUND_HALF_EVEN)
        return int(road_km * 1000), int(seconds)


def position(value):
    """A [longitude, latitude] pair, or None."""
    if (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        return [float(value[0]), float(value[1])]
    return None


def handler(gazetteer):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, status, body, error=None):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("x-amz-geo-pricing-bucket", "Core")
            if error:
                self.send_header("x-amzn-ErrorType", error)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def invalid(self, message):
            self.reply(400, {"message": message, "Reason": "FieldValidationFailed"},
                       "ValidationException")

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return self.invalid("the body is not JSON")
            path = self.path.split("?", 1)[0]
            if path == "/v2/geocode":
                return self.geocode(body)
            if path == "/v2/routes":
                return self.routes(body)
            self.reply(404, {"message": f"no operation at {path}"}, "UnknownOperationException")

        def geocode(self, body):
            query = body.get("QueryText")
            if not isinstance(query, str) or not query:
                return self.invalid("QueryText is required")
            place = gazetteer.locate(query)
            items = [] if place is None else [{
                "PlaceId": normalise(place["address"]),
                "PlaceType": "PointAddress",
                "Title": place["address"],
                "Position": [place["longitude"], place["latitude"]],
                "MatchScores": {"Overall": 1.0},
            }]
            self.reply(200, {"ResultItems": items})

        def routes(self, body):
            origin, destination = position(body.get("Origin")), position(body.get("Destination"))
            if origin is None or destination is None:
                return self.invalid("Origin and Destination must be [longitude, latitude]")
            metres, seconds = gazetteer.route(origin, destination)
            route = {"Legs": [], "MajorRoadLabels": [],
                     "Summary": {"Distance": metres, "Duration": seconds}}
            self.reply(200, {"LegGeometryFormat": "FlexiblePolyline", "Notices": [],
                             "Routes": [route]})

        def log_message(self, *args):
            pass

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gazetteer", default=os.path.join(HERE, "..", "data", "gazetteer.json"))
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        gazetteer = Gazetteer(args.gazetteer)
    except (OSError, ValueError, KeyError) as err:
        sys.exit(f"rehearse-location: cannot read the gazetteer {args.gazetteer}: {err}")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler(gazetteer))
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
