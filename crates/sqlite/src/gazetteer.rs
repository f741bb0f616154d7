//! The offline delivery estimator: great-circle distance over a small gazetteer, times
//! a road factor, at an average speed. Deterministic, so tests and the local stack get
//! the same figures every time.

use async_trait::async_trait;
use ewf_domain::ports::Estimator;
use ewf_domain::{Address, Estimate, Money, ServiceError};
use serde::Deserialize;

/// The gazetteer shipped in `data/`.
pub const SAMPLE_GAZETTEER: &str = include_str!("../../../data/gazetteer.json");

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Place {
    address: String,
    latitude: f64,
    longitude: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gazetteer {
    depot: String,
    road_factor: Money,
    average_speed_kmh: Money,
    places: Vec<Place>,
}

impl Gazetteer {
    pub fn parse(json: &str) -> Result<Self, String> {
        let gazetteer: Self = serde_json::from_str(json).map_err(|err| err.to_string())?;
        if gazetteer.find(&gazetteer.depot).is_none() {
            return Err(format!(
                "the depot {:?} is not among the places",
                gazetteer.depot
            ));
        }
        if gazetteer.average_speed_kmh <= Money::ZERO {
            return Err("averageSpeedKmh must be positive".into());
        }
        Ok(gazetteer)
    }

    pub fn sample() -> Self {
        Self::parse(SAMPLE_GAZETTEER).expect("the sample gazetteer is valid")
    }

    /// Addresses match ignoring case, spacing and punctuation.
    fn find(&self, address: &str) -> Option<&Place> {
        let wanted = normalise(address);
        self.places
            .iter()
            .find(|place| normalise(&place.address) == wanted)
    }

    pub fn estimate(&self, address: &Address) -> Result<Estimate, ServiceError> {
        let depot = self.find(&self.depot).expect("checked in parse");
        let place = self
            .find(address.as_str())
            .ok_or_else(|| ServiceError::not_found("Address", address))?;
        let straight_km = haversine_km(depot, place);
        let road_km = Money::from_f64_retain(straight_km)
            .unwrap_or_default()
            .checked_mul(self.road_factor)
            .unwrap_or_default()
            .round_dp(2);
        let hours = road_km / self.average_speed_kmh;
        let duration = (hours * Money::from(3600)).round();
        let duration = u64::try_from(duration.mantissa()).unwrap_or_default();
        Ok(Estimate {
            origin: self.depot.clone(),
            address: address.clone(),
            distance: road_km,
            duration,
            price: Estimate::price_for(duration),
        })
    }
}

fn normalise(address: &str) -> String {
    address
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn haversine_km(from: &Place, to: &Place) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6371.0088;
    let (lat1, lat2) = (from.latitude.to_radians(), to.latitude.to_radians());
    let d_lat = lat2 - lat1;
    let d_lon = (to.longitude - from.longitude).to_radians();
    let a = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().asin()
}

#[async_trait]
impl Estimator for Gazetteer {
    async fn estimate(&self, address: &Address) -> Result<Estimate, ServiceError> {
        Gazetteer::estimate(self, address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_addresses_get_stable_figures() {
        let gazetteer = Gazetteer::sample();
        let address = Address::parse("Great Russell St, London WC1B 3DG, UK").unwrap();
        let first = gazetteer.estimate(&address).unwrap();
        assert_eq!(first, gazetteer.estimate(&address).unwrap());
        assert!(first.distance > Money::ZERO && first.duration > 0);
        assert_eq!(first.price, Estimate::price_for(first.duration));
        let loose = Address::parse("great russell st london wc1b 3dg uk").unwrap();
        assert_eq!(gazetteer.estimate(&loose).unwrap().duration, first.duration);
    }

    #[test]
    fn unknown_addresses_are_an_error_not_a_guess() {
        let err = Gazetteer::sample()
            .estimate(&Address::parse("1 Nowhere Lane").unwrap())
            .unwrap_err();
        assert_eq!(err.name(), "AddressNotFound");
        assert_eq!(err.status(), 404);
    }
}
